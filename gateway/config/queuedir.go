package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// postfixQueueMarks are entries of a Postfix queue directory. postgate keeps its
// own queue format; writing into Postfix's would corrupt both.
var postfixQueueMarks = []string{"active", "deferred", "maildrop", "incoming", "pid/master.pid"}

// CheckQueueDirectory refuses a directory that holds a Postfix queue. A missing
// directory is fine: postgate creates it.
func CheckQueueDirectory(dir string) error {
	var found []string
	for _, m := range postfixQueueMarks {
		if _, err := os.Lstat(filepath.Join(dir, m)); err == nil {
			found = append(found, m)
		}
	}
	if len(found) == 0 {
		return nil
	}
	return fmt.Errorf("%s holds a Postfix queue (it has %s); postgate keeps its own queue format and must not share Postfix's: give postgate a directory of its own",
		dir, strings.Join(found, ", "))
}
