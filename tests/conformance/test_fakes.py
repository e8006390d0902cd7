"""The fake model servers on the wire: stateless step choice, recording, side routes."""

import json
import urllib.error
import urllib.request

import pytest

from .fakes import Scenario, ToolCall, fake_for

SCENARIO = Scenario(["touch a", "gh secret list"], "final words")


def post(server, path, body):
    request = urllib.request.Request(server.base_url + path, data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read().decode()
    if response.headers.get("content-type") == "application/json":
        return [json.loads(raw)]
    return [json.loads(line[len("data: "):]) for line in raw.splitlines() if line.startswith("data: ")]


def status_of(server, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(server.base_url + path, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def claude_body(results, tools=True):
    messages = [{"role": "user", "content": "go"}]
    for i, (text, is_error) in enumerate(results):
        messages.append({"role": "assistant", "content": [{"type": "tool_use", "id": f"t{i}", "name": "Bash", "input": {}}]})
        messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": f"t{i}", "content": [{"type": "text", "text": text}], "is_error": is_error}]})
    return {"model": "m", "stream": True, "messages": messages, **({"tools": [{"name": "Bash"}]} if tools else {})}


def test_anthropic_steps_by_counting_tool_results_and_records_each_once():
    with fake_for("claude", SCENARIO) as server:
        assert status_of(server, "GET", "/api/hello") == 404
        first = post(server, "/v1/messages?beta=true", claude_body([]))
        second = post(server, "/v1/messages?beta=true", claude_body([("ok", False)]))
        again = post(server, "/v1/messages?beta=true", claude_body([("ok", False)]))  # a retry
        last = post(server, "/v1/messages?beta=true", claude_body([("ok", False), ("denied!", True)]))
        side = post(server, "/v1/messages", claude_body([], tools=False))
    partial = lambda events: json.loads(next(e["delta"]["partial_json"] for e in events
                                             if e["type"] == "content_block_delta"))["command"]
    assert partial(first) == "touch a"
    assert partial(second) == partial(again) == "gh secret list"
    text = lambda events: next(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    assert text(last) == text(side) == "final words"
    assert [e["delta"]["stop_reason"] for e in first if e["type"] == "message_delta"] == ["tool_use"]
    assert [(t.call_id, t.text, t.is_error) for t in server.tool_results] == [("t0", "ok", False), ("t1", "denied!", True)]
    assert [r.path for r in server.requests][0] == "/api/hello"
    assert len(server.model_requests()) == 5


def test_openai_responses_steps_and_records_function_call_outputs():
    def body(outputs):
        items = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]}]
        for i, output in enumerate(outputs):
            items += [{"type": "function_call", "call_id": f"c{i}", "name": "exec_command", "arguments": "{}"},
                      {"type": "function_call_output", "call_id": f"c{i}", "output": output}]
        return {"model": "m", "stream": True, "input": items, "tools": [{"type": "function"}]}

    with fake_for("codex", SCENARIO) as server:
        assert status_of(server, "GET", "/v1/models") == 200
        first = post(server, "/v1/responses", body([]))
        last = post(server, "/v1/responses", body(["exit 0", "Rejected(\"no\")"]))
        assert status_of(server, "POST", "/v1/chat/completions", {"x": 1}) == 404
    done = lambda events: next(e["item"] for e in events if e["type"] == "response.output_item.done")
    assert json.loads(done(first)["arguments"]) == {"cmd": "touch a"}
    assert done(last)["content"][0]["text"] == "final words"
    assert [e["type"] for e in first][-1] == "response.completed"
    assert [(t.call_id, t.text, t.is_error) for t in server.tool_results] == [
        ("c0", "exit 0", None), ("c1", 'Rejected("no")', None)]


def test_gemini_steps_and_marks_policy_errors():
    def body(responses):
        contents = [{"role": "user", "parts": [{"text": "go"}]}]
        for i, response in enumerate(responses):
            contents += [{"role": "model", "parts": [{"functionCall": {"id": f"g{i}", "name": "run_shell_command"}}]},
                         {"role": "user", "parts": [{"functionResponse": {"id": f"g{i}", "name": "run_shell_command",
                                                                         "response": response}}]}]
        return {"contents": contents, "tools": [{"functionDeclarations": []}]}

    with fake_for("gemini", SCENARIO) as server:
        route = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        first = post(server, route, body([]))
        last = post(server, route, body([{"output": "fine"}, {"error": "Tool execution denied by policy. no"}]))
        plain = post(server, "/v1beta/models/gemini-2.5-flash:generateContent", {"contents": []})
    part = lambda events: events[0]["candidates"][0]["content"]["parts"][0]
    assert part(first)["functionCall"]["args"] == {"command": "touch a"}
    assert part(last) == part(plain) == {"text": "final words"}
    assert [(t.call_id, t.text, t.is_error) for t in server.tool_results] == [
        ("g0", "fine", False), ("g1", "Tool execution denied by policy. no", True)]


def test_unknown_cli_is_refused():
    with pytest.raises(ValueError, match="unknown CLI 'cursor'"):
        fake_for("cursor", SCENARIO)


def test_tool_calls_are_sent_verbatim_and_bad_steps_refused():
    scenario = Scenario([ToolCall("Write", {"file_path": "/x", "content": "y"})])
    with fake_for("claude", scenario) as server:
        events = post(server, "/v1/messages", claude_body([]))
    start = next(e for e in events if e["type"] == "content_block_start")
    delta = next(e for e in events if e["type"] == "content_block_delta")
    assert start["content_block"]["name"] == "Write"
    assert json.loads(delta["delta"]["partial_json"]) == {"file_path": "/x", "content": "y"}
    with pytest.raises(ValueError, match="non-empty shell command"):
        Scenario(["ok", "  "])
