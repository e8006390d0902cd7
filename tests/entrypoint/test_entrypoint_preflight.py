"""Boundary preflight against fixture trees and fixture mountinfo files (injected Roots)."""

import os
import socket
import stat

import pytest

from entrypoint import preflight

WORKSPACE = "/workspace"
CLEAN_MOUNTINFO = """\
300 1 0:50 / / rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w
301 300 0:51 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
302 300 0:52 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
303 300 0:53 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro
304 300 254:1 /home/user/project /workspace rw,relatime - ext4 /dev/vda1 rw
305 300 254:1 /var/lib/docker/containers/abc/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/vda1 rw
306 300 254:1 /var/lib/docker/containers/abc/hostname /etc/hostname rw,relatime - ext4 /dev/vda1 rw
307 300 254:1 /var/lib/docker/containers/abc/hosts /etc/hosts rw,relatime - ext4 /dev/vda1 rw
308 300 254:1 /srv/reference /reference ro,relatime - ext4 /dev/vda1 rw
309 302 0:54 / /dev/shm rw,nosuid,nodev,noexec,relatime - tmpfs shm rw,size=65536k
"""
CLEAN_STATUS = "Name:\tpython3\nNoNewPrivs:\t1\nCapBnd:\t0000000000000000\n"


def make_root(tmp_path, mountinfo=CLEAN_MOUNTINFO, status=CLEAN_STATUS, memory="536870912", pids="512"):
    root = tmp_path / "root"
    for folder in ("bin", "sbin", "usr/bin", "usr/sbin", "usr/local/bin", "usr/local/sbin", "run", "var/run"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "usr/bin/git").write_text("#!/bin/sh\n")
    (root / "usr/bin/git").chmod(0o755)
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "1").mkdir()
    (proc / "1" / "status").write_text("Name:\tagent-entrypoint\nPPid:\t0\n")
    (proc / "self" / "status").write_text(status)
    (proc / "self" / "cgroup").write_text("0::/\n")
    (proc / "self" / "mountinfo").write_text(mountinfo)
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    if memory is not None:
        (cgroup / "memory.max").write_text(memory + "\n")
    if pids is not None:
        (cgroup / "pids.max").write_text(pids + "\n")
    return preflight.Roots(root=str(root), proc=str(proc), mountinfo=str(proc / "self" / "mountinfo"),
                           cgroup=str(cgroup), path="/usr/local/bin:/usr/bin:/bin", uid=1000)


def run(roots, environ=None):
    return preflight.run(roots, WORKSPACE, environ or {})


def test_a_clean_container_passes_without_warnings(tmp_path):
    findings = run(make_root(tmp_path))
    assert findings.failures == [] and findings.warnings == []


@pytest.mark.parametrize("where", ["run/docker.sock", "var/run/docker.sock", "run/podman/podman.sock",
                                   "run/containerd/containerd.sock", "run/user/1000/podman/podman.sock"])
def test_an_engine_socket_is_refused(tmp_path, where):
    roots = make_root(tmp_path)
    path = os.path.join(roots.root, where)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    os.chmod(path, 0o666)
    try:
        failures = run(roots).failures
    finally:
        server.close()
    assert failures == [f"container engine socket reachable: /{where}; do not mount the engine socket"]


def test_a_plain_file_named_like_a_socket_is_not_an_engine(tmp_path):
    roots = make_root(tmp_path)
    open(os.path.join(roots.root, "run/docker.sock"), "w").close()
    assert run(roots).failures == []


def test_a_remote_engine_in_the_environment_is_refused(tmp_path):
    failures = run(make_root(tmp_path), {"DOCKER_HOST": "tcp://10.0.0.1:2375"}).failures
    assert failures == ["container engine reachable: DOCKER_HOST=tcp://10.0.0.1:2375; unset it"]


def test_the_host_pid_namespace_is_refused(tmp_path):
    roots = make_root(tmp_path)
    os.makedirs(os.path.join(roots.proc, "2"))
    with open(os.path.join(roots.proc, "2", "status"), "w") as f:
        f.write("Name:\tkthreadd\nPPid:\t0\n")
    assert run(roots).failures == ["host process namespace shared (kthreadd visible); drop --pid=host"]


@pytest.mark.parametrize("bits,kind", [(stat.S_ISUID, "setuid"), (stat.S_ISGID, "setgid")])
def test_a_setuid_or_setgid_binary_is_refused(tmp_path, bits, kind):
    roots = make_root(tmp_path)
    target = os.path.join(roots.root, "usr/bin/newgrp")
    open(target, "w").close()
    os.chmod(target, 0o755 | bits)
    failures = run(roots).failures
    assert failures == [f"{kind} binary present: {target}; remove the bit or the file from the image"]


@pytest.mark.parametrize("name", ["sudo", "su", "doas"])
def test_escalation_programs_are_refused_even_without_the_setuid_bit(tmp_path, name):
    roots = make_root(tmp_path)
    target = os.path.join(roots.root, "usr/local/sbin", name)
    open(target, "w").close()
    os.chmod(target, 0o755)
    assert run(roots).failures == [f"privilege escalation program present: {target}; remove it from the image"]


def test_the_path_is_scanned_too(tmp_path):
    roots = make_root(tmp_path)
    extra = os.path.join(roots.root, "opt/tools")
    os.makedirs(extra)
    open(os.path.join(extra, "sudo"), "w").close()
    roots = preflight.Roots(**{**roots.__dict__, "path": "/opt/tools:/usr/bin"})
    assert [f.split(":")[0] for f in run(roots).failures] == ["privilege escalation program present"]


@pytest.mark.parametrize("mount_point,root,matched", [
    ("/home/agent/.ssh", "/home/user/.ssh", ".ssh"),
    ("/home/agent/.aws", "/home/user/.aws", ".aws"),
    ("/home/agent/.config/gcloud", "/home/user/.config/gcloud", ".config/gcloud"),
    ("/home/agent/.kube", "/home/user/.kube", ".kube"),
    ("/home/agent/.docker/config.json", "/home/user/.docker/config.json", ".docker/config.json"),
    ("/home/agent/.netrc", "/home/user/.netrc", ".netrc"),
    ("/etc/shadow", "/etc/shadow", "/etc/shadow"),
    ("/mnt/keys", "/home/user/.ssh", ".ssh"),  # renamed inside: the source still gives it away
    ("/workspace", "/home/user", "a home folder"),
    ("/workspace", "/root", "a home folder"),
])
def test_a_mounted_host_secret_is_refused_even_read_only(tmp_path, mount_point, root, matched):
    line = f"400 300 254:1 {root} {mount_point} ro,relatime - ext4 /dev/vda1 rw\n"
    failures = run(make_root(tmp_path, mountinfo=CLEAN_MOUNTINFO + line)).failures
    assert failures == [f"host secret mounted: {mount_point} (from {root}, matches {matched}); remove that volume"]


def test_a_project_inside_roots_home_is_a_fine_workspace(tmp_path):
    mountinfo = CLEAN_MOUNTINFO.replace("/home/user/project /workspace", "/root/src/project /workspace")
    assert run(make_root(tmp_path, mountinfo=mountinfo)).failures == []


def test_a_second_writable_bind_mount_is_refused(tmp_path):
    line = "400 300 254:1 /home/user/data /data rw,relatime - ext4 /dev/vda1 rw\n"
    failures = run(make_root(tmp_path, mountinfo=CLEAN_MOUNTINFO + line)).failures
    assert failures == ["writable bind mount other than the workspace: /data (ext4 from /home/user/data); "
                        "mount it read-only (:ro) or remove it"]


def test_mount_points_with_escaped_spaces_are_read_back(tmp_path):
    line = "400 300 254:1 /home/user/my\\040keys/.ssh /home/agent/my\\040keys ro - ext4 /dev/vda1 rw\n"
    failures = run(make_root(tmp_path, mountinfo=CLEAN_MOUNTINFO + line)).failures
    assert failures[0].startswith("host secret mounted: /home/agent/my keys (from /home/user/my keys/.ssh")


def test_a_home_folder_as_workspace_is_refused(tmp_path):
    roots = make_root(tmp_path)
    os.makedirs(os.path.join(roots.root, "workspace", ".ssh"))
    assert run(roots).failures == [
        "workspace holds host credentials: /workspace/.ssh; mount a project folder, not a home folder"]


def test_weaker_signs_are_warnings(tmp_path):
    status = "Name:\tpython3\nNoNewPrivs:\t0\nCapBnd:\t00000000a80425fb\n"
    findings = run(make_root(tmp_path, status=status, memory="max", pids="max"))
    assert findings.failures == []
    assert findings.warnings == [
        "capabilities left in the bounding set: chown,dac_override,fowner,fsetid,kill,setgid,setuid,setpcap,"
        "net_bind_service,net_raw,sys_chroot,mknod,audit_write,setfcap (run with --cap-drop=ALL)",
        "no_new_privs is not set (run with --security-opt no-new-privileges)",
        "no memory limit (run with --memory)",
        "no pids limit (run with --pids-limit)",
    ]


def test_cgroup_v1_limits_are_read(tmp_path):
    roots = make_root(tmp_path, memory=None, pids=None)
    for controller, name, value in (("memory", "memory.limit_in_bytes", "9223372036854771712"), ("pids", "pids.max", "100")):
        os.makedirs(os.path.join(roots.cgroup, controller))
        with open(os.path.join(roots.cgroup, controller, name), "w") as f:
            f.write(value)
    assert run(roots).warnings == ["no memory limit (run with --memory)"]


def test_unreadable_mountinfo_fails_closed(tmp_path):
    roots = make_root(tmp_path)
    os.unlink(roots.mountinfo)
    assert run(roots).failures[0].startswith(f"cannot read {roots.mountinfo}")


def test_a_kubernetes_service_account_token_is_a_secret(tmp_path):
    line = "400 300 0:60 / /var/run/secrets/kubernetes.io/serviceaccount ro,relatime - tmpfs tmpfs rw\n"
    failures = run(make_root(tmp_path, mountinfo=CLEAN_MOUNTINFO + line)).failures
    assert failures == ["host secret mounted: /var/run/secrets/kubernetes.io/serviceaccount (from /, matches "
                        "/var/run/secrets/kubernetes.io); remove that volume"]


def test_a_fresh_tmpfs_on_the_home_folder_is_fine(tmp_path):
    # agent-run's --tmpfs /home/agent: a whole new in-memory file system, nothing from the host.
    line = "400 300 0:61 / /home/agent rw,nosuid,nodev,relatime - tmpfs tmpfs rw,size=2097152k,mode=755\n"
    assert run(make_root(tmp_path, mountinfo=CLEAN_MOUNTINFO + line)).failures == []


@pytest.mark.parametrize("fstype,root", [("tmpfs", "/user"), ("ext4", "/")])
def test_a_host_folder_on_the_home_folder_is_still_refused(tmp_path, fstype, root):
    line = f"400 300 0:61 {root} /home/agent rw,relatime - {fstype} tmpfs rw\n"
    failures = run(make_root(tmp_path, mountinfo=CLEAN_MOUNTINFO + line)).failures
    assert failures[0].startswith("host secret mounted: /home/agent")


def test_a_folder_of_the_workspace_bound_onto_itself_is_the_workspace(tmp_path):
    # agent-run --mount pins .git (a mount point cannot be renamed); same device, root inside the workspace's.
    line = "401 300 254:1 /home/user/project/.git /workspace/.git rw,relatime - ext4 /dev/vda1 rw\n"
    assert run(make_root(tmp_path, mountinfo=CLEAN_MOUNTINFO + line)).failures == []


@pytest.mark.parametrize("device,root", [("254:2", "/home/user/project/.git"), ("254:1", "/home/user/other")])
def test_another_folder_bound_inside_the_workspace_is_refused(tmp_path, device, root):
    line = f"401 300 {device} {root} /workspace/.git rw,relatime - ext4 /dev/vda1 rw\n"
    failures = run(make_root(tmp_path, mountinfo=CLEAN_MOUNTINFO + line)).failures
    assert failures and failures[0].startswith("writable bind mount other than the workspace: /workspace/.git")
