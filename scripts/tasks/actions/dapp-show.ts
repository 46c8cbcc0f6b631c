// `dapp show`: see dapp.ts.
import { hardhatAction } from "./common.ts";
import { dappShow } from "./dapp.ts";

export default hardhatAction(dappShow);
