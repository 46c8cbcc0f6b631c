// `dapp close-session`: see dapp.ts.
import { hardhatAction } from "./common.js";
import { closeSession } from "./dapp.js";

export default hardhatAction(closeSession);
