"""Programs that run another command, as data: what the classifier strips to reach the command a
wrapper runs (`sudo -u x git push`), which programs are shells (`bash -c STRING`), and which take
a command string in an option (`su -c STRING`). docs/guard.md lists them; a new wrapper is a row.
"""

# wrapper -> (options taking a value, long options taking a value (attached with =), positionals
# before the command, accepts NAME=VALUE words)
WRAPPERS = {
    "env": ({"-u", "-C", "-S", "-P", "-a"}, {"--unset", "--chdir", "--split-string", "--argv0"}, 0, True),
    "sudo": ({"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-T", "-U", "-R"},
             {"--user", "--group", "--close-from", "--chdir", "--host", "--prompt", "--role", "--type",
              "--command-timeout", "--other-user", "--chroot"}, 0, True),
    "doas": ({"-u", "-C"}, set(), 0, False),
    "nohup": (set(), set(), 0, False),
    "nice": ({"-n"}, {"--adjustment"}, 0, False),
    "timeout": ({"-s", "-k"}, {"--signal", "--kill-after"}, 1, False),
    "stdbuf": ({"-i", "-o", "-e"}, {"--input", "--output", "--error"}, 0, False),
    "time": ({"-f", "-o"}, {"--format", "--output"}, 0, False),
    "exec": ({"-a"}, set(), 0, False),
    "builtin": (set(), set(), 0, False),
    "ionice": ({"-c", "-n", "-p", "-P", "-u"}, {"--class", "--classdata", "--pid", "--pgid", "--uid"}, 0, False),
    "chrt": (set(), set(), 1, False),
    "taskset": (set(), {"--cpu-list"}, 1, False),
    "setsid": (set(), set(), 0, False),
    "unbuffer": (set(), set(), 0, False),
    "chroot": (set(), {"--userspec", "--groups"}, 1, False),
    "unshare": ({"-S", "-G", "-R", "-w"}, {"--setuid", "--setgid", "--root", "--wd"}, 0, False),
    "nsenter": ({"-t", "-S", "-G", "-r", "-w"}, {"--target", "--setuid", "--setgid", "--root", "--wd"}, 0, False),
    "busybox": (set(), set(), 0, False),
    "xargs": ({"-a", "-d", "-E", "-I", "-L", "-n", "-P", "-s"},
              {"--arg-file", "--delimiter", "--eof", "--replace", "--max-lines", "--max-args", "--max-procs",
               "--max-chars", "--process-slot-var"}, 0, False),
    "npx": ({"-p"}, {"--package", "--cache", "--userconfig"}, 0, False),
}
# builtins whose NAME=value arguments set shell variables for the rest of the command line
DECLARATIONS = frozenset(("export", "declare", "typeset", "local", "readonly"))
# shells: `-c STRING` is parsed again, and so is what they read on stdin when it is known
SHELLS = frozenset(("sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "yash", "posh", "rbash"))
# programs that run a command string given with an option: program -> (short option, long option)
SHELL_STRING_OPTION = {"su": ("-c", "--command"), "runuser": ("-c", "--command"), "script": ("-c", "--command"),
                       "flock": ("-c", "--command"), "npx": ("-c", "--call")}
