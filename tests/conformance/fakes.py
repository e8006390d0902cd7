"""Scripted fake model servers for driving the real agent CLIs offline.

Each server speaks one vendor's streaming wire protocol on 127.0.0.1 (port 0)
and plays a Scenario: one shell command per turn as a tool call, then a final
text. The step is chosen statelessly by counting the tool results already in
the request, so retries and side requests never desynchronise the script.
Every request and every tool result the CLI sends back is recorded, so a test
can assert what reached the model (for instance a refusal text).

Standard library only.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Union


@dataclass(frozen=True)
class ToolCall:
    """A non-shell tool call, sent verbatim: the CLI's own tool name and arguments
    (Claude `Read`/`Write`/`Edit`, Gemini `read_file`/`write_file`, Codex function tools)."""

    name: str
    arguments: dict


Step = Union[str, ToolCall]  # a str is a shell command for the CLI's shell tool


@dataclass(frozen=True)
class Scenario:
    """Tool calls the model makes, one per turn, then a final answer."""

    steps: tuple[Step, ...]
    final_text: str = "All done."

    def __post_init__(self):
        object.__setattr__(self, "steps", tuple(self.steps))
        for step in self.steps:
            if not (isinstance(step, ToolCall) or (isinstance(step, str) and step.strip())):
                raise ValueError(f"scenario step {step!r} must be a non-empty shell command or a ToolCall")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, or the raw text when the body is not JSON, or None


@dataclass(frozen=True)
class ToolResult:
    """What the CLI reported back to the model for one tool call."""

    call_id: str
    text: str
    is_error: bool | None  # None: the protocol carries no error flag (Codex)


@dataclass
class _Record:
    requests: list[RecordedRequest] = field(default_factory=list)
    tool_results: list[ToolResult] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class FakeModelServer:
    """Base class: HTTP plumbing, recording, and the stateless step choice.

    Subclasses implement `_tool_results(body)` (every tool result in a request,
    oldest first) and `_respond(handler, body, step)`.
    """

    cli: str = ""

    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        self._record = _Record()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> "FakeModelServer":
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # close after each response: ends the SSE stream

            def log_message(self, format, *args):  # keep test output clean
                pass

            def do_GET(self):
                server._record_request(self, None)
                server._handle_get(self)

            def do_HEAD(self):
                server._record_request(self, None)
                self.send_response(404)
                self.end_headers()

            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                server._record_request(self, body)
                server._handle_post(self, body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name=f"fake-{self.cli}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "FakeModelServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- what a test reads -------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._record.lock:
            return list(self._record.requests)

    @property
    def tool_results(self) -> list[ToolResult]:
        """Each tool result once (by call id), in the order the CLI first sent it."""
        with self._record.lock:
            return list(self._record.tool_results)

    def model_requests(self) -> list[RecordedRequest]:
        """The requests that asked the model for a turn (not probes like GET /api/hello)."""
        return [r for r in self.requests if r.method == "POST" and self._is_turn_request(r.path, r.body)]

    # -- internals ---------------------------------------------------------
    def _record_request(self, handler: BaseHTTPRequestHandler, body: Any) -> None:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        request = RecordedRequest(handler.command, handler.path, headers, body)
        with self._record.lock:
            self._record.requests.append(request)
            if isinstance(body, dict):
                seen = {t.call_id for t in self._record.tool_results}
                for result in self._tool_results(body):
                    if result.call_id not in seen:
                        seen.add(result.call_id)
                        self._record.tool_results.append(result)

    def _step(self, body: dict) -> int:
        return len(self._tool_results(body))

    def _handle_get(self, handler: BaseHTTPRequestHandler) -> None:
        _send_json(handler, 404, {"error": {"type": "not_found", "message": "fake model server"}})

    def _handle_post(self, handler: BaseHTTPRequestHandler, body: Any) -> None:
        if not isinstance(body, dict) or not self._is_turn_request(handler.path, body):
            _send_json(handler, 404, {"error": {"type": "not_found", "message": f"fake: no route {handler.path}"}})
            return
        self._respond(handler, body, self._step(body))

    def _call(self, body: dict, step: int, shell_tool: str, shell_args) -> ToolCall | None:
        """The tool call for this step, or None when it is time for the final text.

        Requests without tools (titles, summaries, checks) always get the final text.
        """
        if step >= len(self.scenario.steps) or not body.get("tools"):
            return None
        planned = self.scenario.steps[step]
        return planned if isinstance(planned, ToolCall) else ToolCall(shell_tool, shell_args(planned))

    def _is_turn_request(self, path: str, body: Any) -> bool:
        raise NotImplementedError

    def _tool_results(self, body: dict) -> list[ToolResult]:
        raise NotImplementedError

    def _respond(self, handler: BaseHTTPRequestHandler, body: dict, step: int) -> None:
        raise NotImplementedError


def _send_json(handler: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
    data = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def _start_sse(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("content-type", "text/event-stream")
    handler.send_header("cache-control", "no-cache")
    handler.end_headers()


def _sse(handler: BaseHTTPRequestHandler, data: Any, event: str | None = None) -> None:
    chunk = (f"event: {event}\n" if event else "") + f"data: {json.dumps(data)}\n\n"
    handler.wfile.write(chunk.encode())
    handler.wfile.flush()


def _text_of(content: Any) -> str:
    """Flatten a tool-result payload (string, list of text blocks, dict) to text."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(_text_of(item) for item in content)
    if isinstance(content, dict):
        if isinstance(content.get("text"), str):
            return content["text"]
        return json.dumps(content, sort_keys=True)
    return str(content)


# ---------------------------------------------------------------------------
class AnthropicFake(FakeModelServer):
    """Anthropic Messages API (Claude Code): POST /v1/messages, SSE."""

    cli = "claude"

    def _is_turn_request(self, path: str, body: Any) -> bool:
        return path.split("?")[0].endswith("/v1/messages") and isinstance(body, dict)

    def _tool_results(self, body: dict) -> list[ToolResult]:
        results = []
        for message in body.get("messages") or []:
            if message.get("role") != "user" or not isinstance(message.get("content"), list):
                continue
            for block in message["content"]:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    results.append(ToolResult(str(block.get("tool_use_id")), _text_of(block.get("content")),
                                              bool(block.get("is_error", False))))
        return results

    def _respond(self, handler, body, step):
        model = body.get("model", "claude-fake")
        _start_sse(handler)
        usage = {"input_tokens": 10, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        _sse(handler, {"type": "message_start", "message": {
            "id": f"msg_fake_{step}", "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": usage}}, "message_start")
        call = self._call(body, step, "Bash", lambda command: {"command": command, "description": f"scripted step {step}"})
        if call is not None:
            tool_use_id = f"toolu_fake_{step}"
            _sse(handler, {"type": "content_block_start", "index": 0, "content_block": {
                "type": "tool_use", "id": tool_use_id, "name": call.name, "input": {}}}, "content_block_start")
            partial = json.dumps(call.arguments)
            _sse(handler, {"type": "content_block_delta", "index": 0, "delta": {
                "type": "input_json_delta", "partial_json": partial}}, "content_block_delta")
            stop_reason = "tool_use"
        else:
            _sse(handler, {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                 "content_block_start")
            _sse(handler, {"type": "content_block_delta", "index": 0, "delta": {
                "type": "text_delta", "text": self.scenario.final_text}}, "content_block_delta")
            stop_reason = "end_turn"
        _sse(handler, {"type": "content_block_stop", "index": 0}, "content_block_stop")
        _sse(handler, {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                       "usage": {"output_tokens": 5}}, "message_delta")
        _sse(handler, {"type": "message_stop"}, "message_stop")


# ---------------------------------------------------------------------------
class OpenAIResponsesFake(FakeModelServer):
    """OpenAI Responses API (Codex CLI): POST /v1/responses, SSE."""

    cli = "codex"

    def _is_turn_request(self, path: str, body: Any) -> bool:
        return path.split("?")[0].endswith("/responses") and isinstance(body, dict)

    def _handle_get(self, handler):
        if handler.path.split("?")[0].endswith("/models"):
            _send_json(handler, 200, {"object": "list", "data": [], "models": []})
        else:
            super()._handle_get(handler)

    def _tool_results(self, body: dict) -> list[ToolResult]:
        results = []
        for item in body.get("input") or []:
            if isinstance(item, dict) and item.get("type") == "function_call_output":
                results.append(ToolResult(str(item.get("call_id")), _text_of(item.get("output")), None))
        return results

    def _respond(self, handler, body, step):
        response_id = f"resp_fake_{step}"
        _start_sse(handler)
        _sse(handler, {"type": "response.created", "response": {"id": response_id}}, "response.created")
        call = self._call(body, step, "exec_command", lambda command: {"cmd": command})
        if call is not None:
            item = {"type": "function_call", "id": f"fc_fake_{step}", "call_id": f"call_fake_{step}",
                    "name": call.name, "arguments": json.dumps(call.arguments)}
        else:
            item = {"type": "message", "id": f"msg_fake_{step}", "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": self.scenario.final_text, "annotations": []}]}
        _sse(handler, {"type": "response.output_item.added", "output_index": 0, "item": item},
             "response.output_item.added")
        _sse(handler, {"type": "response.output_item.done", "output_index": 0, "item": item},
             "response.output_item.done")
        _sse(handler, {"type": "response.completed", "response": {"id": response_id, "usage": {
            "input_tokens": 10, "input_tokens_details": None, "output_tokens": 5,
            "output_tokens_details": None, "total_tokens": 15}}}, "response.completed")


# ---------------------------------------------------------------------------
LOOP_CHECK_FIELD = "unproductive_state_confidence"   # in the JSON schema of Gemini CLI's loop check


class GeminiFake(FakeModelServer):
    """Gemini API (Gemini CLI): POST /v1beta/models/M:streamGenerateContent?alt=sse."""

    cli = "gemini"

    def _is_turn_request(self, path: str, body: Any) -> bool:
        route = path.split("?")[0]
        return (route.endswith(":streamGenerateContent") or route.endswith(":generateContent")) and isinstance(body, dict)

    def _tool_results(self, body: dict) -> list[ToolResult]:
        results = []
        count = 0
        for content in body.get("contents") or []:
            for part in content.get("parts") or []:
                response = part.get("functionResponse") if isinstance(part, dict) else None
                if not isinstance(response, dict):
                    continue
                payload = response.get("response")
                is_error = isinstance(payload, dict) and "error" in payload
                if isinstance(payload, dict):
                    text = _text_of(payload.get("error") if is_error else payload.get("output", payload))
                else:
                    text = _text_of(payload)
                call_id = str(response.get("id") or f"gemini-call-{count}")
                count += 1
                results.append(ToolResult(call_id, text, is_error))
        return results

    def _respond(self, handler, body, step):
        route = handler.path.split("?")[0]
        if LOOP_CHECK_FIELD in json.dumps(body):
            # After 30 turns Gemini CLI asks a model whether the session is stuck in a loop and, when
            # the answer is not the JSON it asked for, retries for minutes: a scripted session is not.
            verdict = {LOOP_CHECK_FIELD: 0, "unproductive_state_analysis": "A scripted session, not a loop."}
            _send_json(handler, 200, {"candidates": [{"content": {"role": "model", "parts": [{"text": json.dumps(verdict)}]},
                                                      "finishReason": "STOP", "index": 0}],
                                      "modelVersion": "gemini-2.5-flash"})
            return
        chunk = self.turn(body, step)
        if route.endswith(":generateContent"):
            _send_json(handler, 200, chunk)
            return
        _start_sse(handler)
        _sse(handler, chunk)

    def turn(self, body: dict, step: int) -> dict:
        """The scripted turn as one Gemini API response: the step's shell call, or the final text."""
        call = self._call(body, step, "run_shell_command", lambda command: {"command": command})
        if call is not None:
            part = {"functionCall": {"id": f"gemini-call-{step}", "name": call.name, "args": call.arguments}}
        else:
            part = {"text": self.scenario.final_text}
        return {"candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15},
                "modelVersion": "gemini-2.5-flash"}


FAKES: dict[str, type[FakeModelServer]] = {
    "claude": AnthropicFake,
    "codex": OpenAIResponsesFake,
    "gemini": GeminiFake,
}


def fake_for(cli: str, scenario: Scenario) -> FakeModelServer:
    """An unstarted fake server for `cli` ("claude", "codex" or "gemini")."""
    try:
        return FAKES[cli](scenario)
    except KeyError:
        raise ValueError(f"unknown CLI {cli!r}; expected one of {sorted(FAKES)}") from None
