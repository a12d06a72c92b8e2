package cloud

import "github.com/aerostat-io/aerostat/internal/imds"

// Identity is the running instance as its metadata service describes it
// (read with package imds, which needs no AWS SDK).
type Identity = imds.Identity
