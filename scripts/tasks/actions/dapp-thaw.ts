// `dapp thaw`: see dapp.ts.
import { hardhatAction } from "./common.ts";
import { thaw } from "./dapp.ts";

export default hardhatAction(thaw);
