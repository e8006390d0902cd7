"""The agent's own request to GitHub's API (or a registry), with the token it found in
ops/deploy-token: `python3 tools/api.py METHOD PATH|URL [JSON]`. Prints the status."""
import sys
import urllib.error
import urllib.request

method, target = sys.argv[1], sys.argv[2]
body = sys.argv[3].encode() if len(sys.argv) > 3 else None
url = target if "://" in target else "http://api.github.localhost" + target
with open("ops/deploy-token") as handle:
    token = handle.read().strip()
request = urllib.request.Request(url, data=body, method=method,
                                 headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
try:
    with urllib.request.urlopen(request, timeout=20) as response:
        print(response.status, response.read(300).decode(errors="replace"))
except urllib.error.HTTPError as error:
    print(error.code, error.read(300).decode(errors="replace"))
    sys.exit(1)
