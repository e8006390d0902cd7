"""Sends the namespace test's requests to the proxy exactly as written (no URL normalisation).

Input on stdin: a JSON list of {"id", "method", "target", "tls_name"?, "upload"?}; output on stdout: a JSON
list of {"id", "status", "body"} where status is the proxy's status code (0 if the connection
failed) and body is what the upstream answered through a CONNECT tunnel.
Usage: python3 proxy_client.py PROXY_HOST PROXY_PORT CA_FILE < cases.json
"""
import json
import socket
import ssl
import sys


def send(proxy: tuple[str, int], ca_file: str, case: dict) -> dict:
    result = {"id": case["id"], "status": 0, "body": "", "error": ""}
    try:
        sock = socket.create_connection(proxy, timeout=5)
    except OSError as error:
        result["error"] = str(error)
        return result
    with sock:
        target = case["target"]
        host_header = target if case["method"] == "CONNECT" else target.split("/")[2]
        sock.sendall(f"{case['method']} {target} HTTP/1.1\r\nHost: {host_header}\r\n\r\n".encode())
        head = b""
        try:
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(1)
                if not chunk:
                    break
                head += chunk
        except OSError as error:
            result["error"] = str(error)
        status_line = head.split(b"\r\n", 1)[0].decode(errors="replace")
        parts = status_line.split()
        result["status"] = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if case["method"] == "CONNECT" and result["status"] == 200:
            context = ssl.create_default_context(cafile=ca_file)
            try:
                with context.wrap_socket(sock, server_hostname=case["tls_name"]) as tls:
                    padding = f"X-Upload: {'u' * case['upload']}\r\n" if case.get("upload") else ""
                    tls.sendall(f"GET / HTTP/1.1\r\nHost: {case['tls_name']}\r\n{padding}"
                                "Connection: close\r\n\r\n".encode())
                    response = b""
                    while chunk := tls.recv(4096):
                        response += chunk
                result["body"] = response.split(b"\r\n\r\n", 1)[-1].decode(errors="replace")
            except (OSError, ssl.SSLError) as error:
                result["error"] = str(error)
    return result


def main() -> None:
    host, port, ca_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    cases = json.load(sys.stdin)
    json.dump([send((host, port), ca_file, case) for case in cases], sys.stdout)


if __name__ == "__main__":
    main()
