package iak

import (
	"crypto/md5"
	"encoding/hex"
)

// sign computes IAK's request signature md5(username + api_key + suffix) in
// lowercase hex. MD5 is IAK's mandate, not our choice; for checkstatus the
// suffix is the literal "cs", so the sign is constant per account.
func sign(username, apiKey, suffix string) string {
	sum := md5.Sum([]byte(username + apiKey + suffix))
	return hex.EncodeToString(sum[:])
}
