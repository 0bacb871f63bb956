module packyard.dev/contract

go 1.23.0

require github.com/hashicorp/hcp-sdk-go v0.175.0 // indirect
