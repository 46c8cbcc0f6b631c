// `dapp withdraw`: see dapp.ts.
import { hardhatAction } from "./common.js";
import { withdrawEscrow } from "./dapp.js";

export default hardhatAction(withdrawEscrow);
