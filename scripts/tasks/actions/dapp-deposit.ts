// `dapp deposit`: see dapp.ts.
import { hardhatAction } from "./common.js";
import { deposit } from "./dapp.js";

export default hardhatAction(deposit);
