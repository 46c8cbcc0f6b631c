// `dapp revoke-signer`: see dapp.ts.
import { hardhatAction } from "./common.js";
import { revokeSigner } from "./dapp.js";

export default hardhatAction(revokeSigner);
