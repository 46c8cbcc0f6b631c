// `dapp authorize-signer`: see dapp.ts.
import { hardhatAction } from "./common.ts";
import { authorizeSigner } from "./dapp.ts";

export default hardhatAction(authorizeSigner);
