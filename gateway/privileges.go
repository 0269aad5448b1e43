package gateway

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// DropPrivileges runs the rest of the process as the mail_owner user, once
// the listeners are bound (ports below 1024 need root; nothing after
// does). The queue directory and the mail log become that user's, as
// `postfix set-permissions` makes Postfix's queue its mail_owner's; the
// control socket stays root's (mode 0600), so only root runs the admin
// commands. Go applies setuid to every thread of the process.
func (g *Gateway) DropPrivileges(owner string) error {
	u, err := user.Lookup(owner)
	if err != nil {
		return paramError(g.cfg, "mail_owner", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if uid == 0 {
		return paramError(g.cfg, "mail_owner", fmt.Errorf("%s is a privileged user", owner))
	}
	qdir := g.cfg.Get("queue_directory")
	control := filepath.Join(qdir, ControlSocket)
	err = filepath.WalkDir(qdir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == control {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
	if err == nil && g.cfg.Get("maillog_file") != "" {
		err = os.Chown(g.cfg.Get("maillog_file"), uid, gid)
	}
	if err != nil {
		return fmt.Errorf("mail_owner %s: %w", owner, err)
	}
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("mail_owner %s: setgroups: %w", owner, err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("mail_owner %s: setgid: %w", owner, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("mail_owner %s: setuid: %w", owner, err)
	}
	return nil
}
