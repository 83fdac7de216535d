//! Docker Content Trust publishing: signs image tags into a Notary server's
//! collections with root, repository and signer keys held in tufkeyd, so no private
//! key file sits on the publisher's machine.

pub mod transport;
