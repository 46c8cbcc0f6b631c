// `dapp deposit`: see dapp.ts.
import { hardhatAction } from "./common.ts";
import { deposit } from "./dapp.ts";

export default hardhatAction(deposit);
