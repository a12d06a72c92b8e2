package cloud

import "github.com/aerostat-io/aerostat/internal/naming"

// InstanceOf is what List makes of one SDK instance.
var InstanceOf = instanceOf

// DecodeLean runs the lean DescribeInstances decoder alone; ok false means
// the page would go to the SDK's decoder.
func DecodeLean(body []byte) (nextToken *string, instances []naming.Instance, ok bool) {
	var p leanPage
	ok = p.decode(body)
	return p.nextToken, p.instances, ok
}

// SetSDKDecoding turns the lean decoder off (true) or on.
func (e *EC2) SetSDKDecoding(on bool) { e.sdkDecoding = on }

// LeanFallbacks is how many pages the lean decoder handed to the SDK's.
func (e *EC2) LeanFallbacks() int64 { return e.fallbacks.Load() }
