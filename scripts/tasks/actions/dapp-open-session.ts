// `dapp open-session`: see dapp.ts.
import { hardhatAction } from "./common.js";
import { openSession } from "./dapp.js";

export default hardhatAction(openSession);
