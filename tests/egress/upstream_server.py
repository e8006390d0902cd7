"""The namespace test's upstream: HTTPS on 443 and plain HTTP on other ports, all answering
"upstream-ok". Run inside the upstream namespace: python3 upstream_server.py CERT KEY ADDR...
Prints "ready" once every socket listens."""
import socket
import ssl
import sys
import threading

BODY = b"upstream-ok"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: %%s\r\n\r\n%s" % (len(BODY), BODY)


def serve(sock: socket.socket, context: ssl.SSLContext | None) -> None:
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=answer, args=(conn, context), daemon=True).start()


def answer(conn: socket.socket, context: ssl.SSLContext | None) -> None:
    try:
        conn.settimeout(5)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if context is not None:
            conn = context.wrap_socket(conn, server_side=True)
        data = b""
        while True:  # keep-alive: one response per request until the client closes
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            head, data = data.split(b"\r\n\r\n", 1)
            close = b"connection: close" in head.lower()
            conn.sendall(RESPONSE % (b"close" if close else b"keep-alive"))
            if close:
                return
    except (OSError, ssl.SSLError):
        pass
    finally:
        conn.close()


def main() -> None:
    cert, key, *addresses = sys.argv[1:]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    for address in addresses:
        host, port = address.rsplit(":", 1)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, int(port)))
        sock.listen(64)
        tls = context if port == "443" else None
        threading.Thread(target=serve, args=(sock, tls), daemon=True).start()
    print("ready", flush=True)
    sys.stdin.read()  # runs until the test closes our stdin


if __name__ == "__main__":
    main()
