// `dapp open-session`: see dapp.ts.
import { hardhatAction } from "./common.ts";
import { openSession } from "./dapp.ts";

export default hardhatAction(openSession);
