// `dapp authorize-signer`: see dapp.ts.
import { hardhatAction } from "./common.js";
import { authorizeSigner } from "./dapp.js";

export default hardhatAction(authorizeSigner);
