"""A push written by hand, as no git command would send it: `python3 tools/forge_push.py REF`
sets REF at the fake GitHub to this repository's HEAD, whatever REF held (a forced update),
through git smart HTTP with the token found in ops/deploy-token. Prints git's report."""
import base64
import subprocess
import sys
import urllib.error
import urllib.request

ref = sys.argv[1]
head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
# What the server holds now (a read, through the same route as every fetch).
listed = subprocess.run(["git", "ls-remote", "origin", ref], capture_output=True, text=True).stdout.split()
old = listed[0] if listed else "0" * 40
pack = subprocess.run(["git", "pack-objects", "--stdout", "--revs", "-q"], input=b"HEAD\n", capture_output=True,
                      check=True).stdout
line = f"{old} {head} {ref}\0report-status\n".encode()
body = b"%04x" % (len(line) + 4) + line + b"0000" + pack
with open("ops/deploy-token") as handle:
    token = handle.read().strip()
credential = base64.b64encode(f"x-access-token:{token}".encode()).decode()
request = urllib.request.Request("http://github.localhost/octo/widgets.git/git-receive-pack", data=body, method="POST",
                                 headers={"Content-Type": "application/x-git-receive-pack-request",
                                          "Accept": "application/x-git-receive-pack-result",
                                          "Authorization": f"Basic {credential}"})
try:
    with urllib.request.urlopen(request, timeout=30) as response:
        print(response.status, response.read(600))
except urllib.error.HTTPError as error:
    print(error.code, error.read(600))
    sys.exit(1)
