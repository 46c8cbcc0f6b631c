// `dapp thaw`: see dapp.ts.
import { hardhatAction } from "./common.js";
import { thaw } from "./dapp.js";

export default hardhatAction(thaw);
