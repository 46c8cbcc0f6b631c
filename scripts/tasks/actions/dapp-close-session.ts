// `dapp close-session`: see dapp.ts.
import { hardhatAction } from "./common.ts";
import { closeSession } from "./dapp.ts";

export default hardhatAction(closeSession);
