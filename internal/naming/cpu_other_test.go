//go:build !unix

package naming

import "time"

func processCPU() time.Duration { return 0 }
