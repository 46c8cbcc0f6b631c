// `dapp show`: see dapp.ts.
import { hardhatAction } from "./common.js";
import { dappShow } from "./dapp.js";

export default hardhatAction(dappShow);
