"""The body checks of Gemini CLI's Code Assist traffic (Login with Google): the Gemini request is
wrapped in {"model", "project", "request": {...}}, and the server-side tools hide inside."""
import json

import pytest

from egress.gateway_rules import check_body

TURN = {"model": "gemini-2.5-flash", "project": "p-1", "user_prompt_id": "u",
        "request": {"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                    "tools": [{"functionDeclarations": [{"name": "run_shell_command"}]}]}}


def body(**inner) -> bytes:
    doc = json.loads(json.dumps(TURN))
    doc["request"].update(inner)
    return json.dumps(doc).encode()


def test_a_turn_with_the_clis_own_tools_goes_through():
    assert check_body("code_assist", body(), allow_server_tools=False) is None


@pytest.mark.parametrize("tools", [[{"googleSearch": {}}], [{"google_search": {}}], [{"urlContext": {}}],
                                   [{"functionDeclarations": []}, {"codeExecution": {}}]])
def test_a_server_side_tool_inside_the_wrapped_request_is_refused(tools):
    refusal = check_body("code_assist", body(tools=tools), allow_server_tools=False)
    assert refusal is not None and (refusal.decision, refusal.rule) == ("deny_server_tool", "server-side-tools")
    assert check_body("code_assist", body(tools=tools), allow_server_tools=True) is None


def test_a_part_given_by_a_cloud_storage_uri_is_refused():
    contents = [{"role": "user", "parts": [{"fileData": {"fileUri": "gs://bucket/secret.pdf", "mimeType": "x"}}]}]
    refusal = check_body("code_assist", body(contents=contents), allow_server_tools=False)
    assert refusal is not None and refusal.decision == "deny_server_tool"


def test_two_keys_that_both_mean_request_are_refused_as_ambiguous():
    raw = json.dumps({"request": {"contents": []}}).encode()[:-1] + b', "Request": {"tools": [{"googleSearch": {}}]}}'
    refusal = check_body("code_assist", raw, allow_server_tools=False)
    assert refusal is not None and (refusal.decision, refusal.rule) == ("deny_body", "body-format")


@pytest.mark.parametrize("raw", [b"not json", b"[]", b'{"a": 1, "a": 2}', b'{"a": NaN}'])
def test_start_up_calls_must_be_strict_json(raw):
    refusal = check_body("json", raw, allow_server_tools=False)
    assert refusal is not None and refusal.decision == "deny_body"
    assert check_body("json", b'{"project": "p-1"}', allow_server_tools=False) is None
