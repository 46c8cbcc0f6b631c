// `dapp revoke-signer`: see dapp.ts.
import { hardhatAction } from "./common.ts";
import { revokeSigner } from "./dapp.ts";

export default hardhatAction(revokeSigner);
