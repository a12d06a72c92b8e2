package embedded

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func buildMsg(t testing.TB, flags uint32, body bson.D) []byte {
	doc, err := bson.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, 21, 21+len(doc))
	binary.LittleEndian.PutUint32(msg[12:], opMsg)
	binary.LittleEndian.PutUint32(msg[16:], flags)
	msg = append(msg, doc...) // msg[20] = 0: a body section
	binary.LittleEndian.PutUint32(msg, uint32(len(msg)))
	return msg
}

func TestIsWrite(t *testing.T) {
	tests := map[string]struct {
		msg  []byte
		want bool
	}{
		"find":          {buildMsg(t, 0, bson.D{{Key: "find", Value: "servers"}}), false},
		"hello":         {buildMsg(t, 0, bson.D{{Key: "hello", Value: 1}}), false},
		"update":        {buildMsg(t, 0, bson.D{{Key: "update", Value: "servers"}}), true},
		"findAndModify": {buildMsg(t, 0, bson.D{{Key: "findAndModify", Value: "meta"}}), true},
		"unknown":       {buildMsg(t, 0, bson.D{{Key: "somethingNew", Value: 1}}), true},
		"truncated":     {buildMsg(t, 0, bson.D{{Key: "find", Value: "x"}})[:22], true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := isWrite(tc.msg); got != tc.want {
				t.Errorf("isWrite = %v, want %v", got, tc.want)
			}
		})
	}
}

// The proxy parses what any local client sends; garbage must not panic it.
func FuzzReadMessage(f *testing.F) {
	f.Add(buildMsg(f, 0, bson.D{{Key: "find", Value: "servers"}}))
	f.Add(buildMsg(f, flagMoreToCome, bson.D{{Key: "insert", Value: "servers"}}))
	f.Add([]byte{16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xdd, 7, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := readMessage(bufio.NewReader(bytes.NewReader(data)))
		if err != nil {
			return
		}
		_ = isWrite(msg)
		_ = moreToCome(msg)
	})
}
