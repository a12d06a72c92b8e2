// Package attest lets a node prove which EC2 instance it is before the
// controller claims a name for it: the node sends its instance identity
// document signed by AWS (IMDS /latest/dynamic/instance-identity/rsa2048)
// with a nonce it keeps; the controller verifies the signature against
// AWS's per-Region certificates, binds the nonce to the instance on first
// use (Vault's aws auth "client nonce"), checks the instance in EC2
// (running, same private IP, service tag) and only then claims, with the
// IP EC2 reports. Nodes hold no ledger credentials.
package attest
