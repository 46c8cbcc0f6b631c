// `dapp withdraw`: see dapp.ts.
import { hardhatAction } from "./common.ts";
import { withdrawEscrow } from "./dapp.ts";

export default hardhatAction(withdrawEscrow);
