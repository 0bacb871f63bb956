// Package contract holds Packyard's contract tests against the official
// HashiCorp Go SDK (hcp-sdk-go): every test drives a real `packyard serve`
// through the stable 2023-01-01 Packer client and the 2019-12-10
// resource-manager client, exactly as Packer and the Terraform provider do.
package contract
