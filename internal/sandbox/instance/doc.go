// Package instance runs simulated EC2 instances as processes running their
// user data, the way EC2 and cloud-init would, and guarantees that no
// process of an instance outlives it.
//
// # Processes
//
// A Supervisor re-executes the current binary once, with its first
// instance, as the supervisor of every instance it starts, in a process
// group of its own (see package proc: the package registers the
// supervisor's role, and proc.Main, called first by the program's main and
// by the TestMain of a test binary that starts instances, runs it). The
// Supervisor sends it commands (start an instance, stop one) on its
// standard input and reads its events (an instance's user data finished,
// no process of an instance is left) from a pipe.
//
// The supervisor makes itself a child subreaper, so that descendants which
// daemonize (double fork, setsid) are re-parented to it, runs each
// instance's user-data stages one after the other, and keeps the instance
// running after its user data, as on EC2. An instance's processes are its
// running stage and everything below it, and every process re-parented to
// the supervisor whose environment started with the instance's
// LIFEGUARD_SANDBOX_ROOT (unique to it), with everything below those. To
// stop an instance the supervisor sends SIGTERM (and SIGCONT) to each of
// them, looks again every 20 ms (one pass for every stopping instance),
// SIGKILLs whatever is left after the grace period and reports the
// instance gone when none is left.
//
// When the sandbox dies, the kernel sends the supervisor SIGTERM (its
// parent-death signal): it stops every instance with a 5 s grace, kills
// whatever is still below it, and exits. When the supervisor dies, the
// processes of its instances are found by their environment and killed,
// and every instance it ran is reported gone; the next Start starts a new
// supervisor. Each stage leads a process group of its own, so a script's
// "kill 0" reaches its own processes only.
//
// # Console output
//
// The standard output and error of every stage are appended to
// <Dir>/console.log, with marker lines written by the supervisor at stage
// boundaries, such as
//
//	lifeguard-sandbox: running user data script (scripts/part-001)
//	lifeguard-sandbox: user data script exited with status 3 (scripts/part-001)
//
// Console returns the last 64 KiB of it, as EC2's GetConsoleOutput does.
//
// # User data
//
// User data is handled as cloud-init handles it:
//
//   - Empty user data runs nothing.
//   - Gzip-compressed user data (magic 1f 8b) is decompressed first.
//   - User data with a "MIME-Version:" header in its first 4 KiB is a MIME
//     message, as produced by cloud-init's make-mime or Terraform's
//     cloudinit_config; multipart messages are walked part by part (nested
//     multiparts included), base64 and quoted-printable transfer encodings
//     are decoded, and gzip content types are decompressed. Parts without
//     a filename are named part-001, part-002, … in order.
//   - A part of type text/plain, text/x-not-multipart or text/x-shellscript,
//     and user data that is not MIME, is typed by how it starts (ignoring
//     case and leading white space): "#!" is a shell script,
//     "#cloud-config" is cloud-config, "#cloud-boothook" a boothook;
//     "#include", "#include-once", "#cloud-config-archive",
//     "#cloud-config-jsonp", "#part-handler", "#upstart-job" and
//     "## template: jinja" are recognised but not supported, and a console
//     line says so. Anything else is not executable user data: a console
//     line says so and nothing runs.
//   - Shell scripts (text/x-shellscript, and the -per-once, -per-boot and
//     -per-instance variants) are written with mode 0700 under
//     <Dir>/scripts and executed directly, so the kernel honours their "#!"
//     line; a script without one fails with "exec format error", as on EC2.
//   - Boothooks have their "#cloud-boothook" line removed, are written under
//     <Dir>/boothooks and executed directly with INSTANCE_ID in their
//     environment.
//   - Cloud-config parts are merged in part order with cloud-init's merge
//     rules: by default ("dict(replace)+list()+str()") a key in a later part
//     replaces the same key in an earlier one, so two parts with runcmd keep
//     only the later list; a merge_how (or merge_type) key, or a Merge-Type
//     or X-Merge-Type part header, selects another merge, such as the
//     common "list(append)+dict(recurse_array)+str()" which appends lists.
//   - Of cloud-config, bootcmd, write_files and runcmd are supported. Other
//     keys get a console line saying they are not supported in the sandbox
//     and are ignored. bootcmd and runcmd entries are strings, written
//     verbatim as lines of a /bin/sh script, or lists, whose items are
//     single-quoted and joined, as cloud-init's shellify does; so one
//     entry's "cd" or "export" affects the following entries, a failing
//     entry does not stop the next, and the script's status is that of its
//     last entry. write_files supports path, content, encoding (b64, base64,
//     gz, gzip, gz+b64, gzip+b64, gz+base64, gzip+base64, text/plain),
//     permissions (an octal string such as '0644', or a YAML integer),
//     append and defer; owner is ignored.
//
// The stages run in cloud-init's order: boothooks (part order), bootcmd,
// write_files without defer, write_files with defer, then the scripts of
// cloud-init's final stage: per-once, per-boot and per-instance scripts,
// then the user scripts, which are the shell-script parts and the runcmd
// script, in the order of their file names (so part-001, part-002, …, then
// runcmd; a part named "zz.sh" runs after runcmd, as on EC2). A stage that
// fails or exits non-zero is reported on the console and the next stage
// still runs. Every stage runs in Dir with the sandbox's environment, then
// Spec.Env, then LIFEGUARD_SANDBOX_ROOT; its standard input is /dev/null.
//
// # Deviations from EC2
//
//   - An instance cannot write to the developer's /etc: absolute write_files
//     paths are placed under <Dir>/root (so /etc/app/agent.yaml becomes
//     <Dir>/root/etc/app/agent.yaml), and relative ones under Dir.
//     Every stage's environment has LIFEGUARD_SANDBOX_ROOT=<Dir>/root so
//     scripts can find those files.
//   - Stages run in Dir, where cloud-init runs them in /.
//   - Stages run as the sandbox's user, not root, sharing the host's file
//     system and network; write_files owner is ignored.
//   - #include URLs are not fetched, and cloud-config modules other than the
//     four above are not run.
//   - There is no reboot, so per-boot, per-instance and per-once scripts all
//     run exactly once, at Start.
package instance
