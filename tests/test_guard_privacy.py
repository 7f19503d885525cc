"""Redaction of personal data, where the machine ends, and the policy rules."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from heron.agent.guard.faces import FaceBlurrer
from heron.agent.guard.policy import asks_to_identify, asks_why, user_asked_for
from heron.agent.guard.privacy import is_local_endpoint, redact, redact_content


def test_personal_data_is_replaced_by_its_kind() -> None:
    text = (
        "Write to jane.doe@example.com or call (415) 555-0132 or +44 20 7946 0958. "
        "Card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00, SSN 536-22-1234."
    )
    redacted, counts = redact(text)
    assert redacted == (
        "Write to [email] or call [phone number] or [phone number]. "
        "Card [card number], IBAN [IBAN], SSN [SSN]."
    )
    assert counts == {"email": 1, "phone": 2, "card": 1, "iban": 1, "ssn": 1}


@pytest.mark.parametrize(
    "text",
    [
        "Open 9-5, Mon to Fri",
        "Price 12.99, was 15.49",
        "EAN 4006381333931",  # a barcode passes Luhn-like checks but is no card
        "Order 20240115-0042",
        "Card 4111 1111 1111 1112",  # fails Luhn
        "IBAN DE89 3704 0044 0532 0130 01",  # wrong check digits
        "Platform 9, 10:42 to London",
        "Model HX-2200 Serial 88231",
    ],
)
def test_numbers_that_are_not_personal_data_are_kept(text: str) -> None:
    assert redact(text) == (text, {})


def test_json_results_are_redacted_value_by_value() -> None:
    content = json.dumps(
        {"lines": [{"text": "jane@example.org", "box": [[415, 555], [132, 20]]}], "n": 4155550132}
    )
    redacted, counts = redact_content(content)
    data = json.loads(redacted)
    assert data["lines"][0] == {"text": "[email]", "box": [[415, 555], [132, 20]]}
    assert data["n"] == 4155550132 and counts == {"email": 1}


@pytest.mark.parametrize(
    ("url", "local_hosts", "local"),
    [
        ("http://127.0.0.1:8000/v1", [], True),
        ("http://localhost:11434/v1", [], True),
        ("http://[::1]:8080/v1", [], True),
        ("https://api.openai.com/v1", [], False),
        (None, [], False),  # OpenAI's own service
        ("http://192.168.1.20:11434/v1", [], False),  # another machine, until trusted
        ("http://192.168.1.20:11434/v1", ["192.168.1.20"], True),
        ("http://gpu-box.lan/v1", ["GPU-box.lan"], True),
    ],
)
def test_which_endpoints_are_on_this_machine(
    url: str | None, local_hosts: list[str], local: bool
) -> None:
    assert is_local_endpoint(url, local_hosts) is local


@pytest.mark.parametrize(
    ("tool", "words", "asked"),
    [
        ("forget", "please forget what I told you", True),
        ("forget", "delete that note", True),
        ("forget", "read this sign", False),
        ("forget", "don't forget my keys", False),
        ("remember", "don't forget my keys", True),
        ("remember", "remember where I parked", True),
        ("remember", "what does it say", False),
    ],
)
def test_state_changing_tools_need_the_users_own_words(tool: str, words: str, asked: bool) -> None:
    assert user_asked_for(tool, words) is asked


@pytest.mark.parametrize(
    ("text", "identify"),
    [
        ("Who is this?", True),
        ("who is that man on the left", True),
        ("What's her name?", True),
        ("Can you recognise this person?", True),
        ("Do you know who this is?", True),
        ("Who is this letter from?", False),
        ("Who is the author of this book?", False),
        ("Can you identify this plant?", False),
        ("How many people are there?", False),
        ("What is he wearing?", False),
    ],
)
def test_requests_to_identify_a_person_are_recognised(text: str, identify: bool) -> None:
    assert asks_to_identify(text) is identify


def test_why_questions_are_recognised() -> None:
    assert asks_why("Why didn't you read that?") and asks_why("why did you refuse")
    assert not asks_why("why is the sky blue") and not asks_why("what does it say")


@pytest.mark.parametrize("detector", ["cascade", "centerface"])
def test_faces_are_blurred_and_the_rest_is_untouched(detector: str) -> None:
    from skimage import data

    from heron.agent.guard.faces import centerface_available
    from tests.conftest import need

    if detector == "centerface" and not centerface_available():
        need("the CenterFace detector: pip install 'heron[faces]'")
    photo = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    blurred, count = FaceBlurrer(detector).blur(photo)
    assert count == 1
    changed = np.any(blurred != photo, axis=2)
    ys, xs = np.nonzero(changed)
    # the change is the astronaut's face (around x 180-270, y 60-180) and nothing else
    assert xs.min() >= 130 and xs.max() <= 320 and ys.min() <= 70 and ys.max() <= 230
    assert changed[100:150, 200:250].mean() > 0.95
    assert not changed[300:, :].any()
    # no landscape, text or blank frame is touched
    blank = np.full((240, 320, 3), 200, np.uint8)
    assert FaceBlurrer(detector).blur(blank)[1] == 0
