"""The providers' server-sent-events reader (eval/providers/sse.py): frames
whatever the chunking, the spec's line ends, fields and comments."""

import asyncio

import orjson
import pytest

from eval.providers import sse

STREAM = (
    b": a comment\n"
    b'event: message_start\ndata: {"a": 1}\n\n'
    b"event: ping\ndata: {}\n\n"
    b'data: {"no": "event line"}\n\n'
    b'event: content_block_delta\ndata:{"text": "h\\u00e9"}\n\n'
    b"event: multi\ndata: [1,\ndata: 2]\n\n"
    b'event: cut\ndata: {"never": "ends"}\n'  # no blank line: the body ended mid-frame
)
EXPECTED = [
    ("message_start", {"a": 1}),
    ("ping", {}),
    ("", {"no": "event line"}),
    ("content_block_delta", {"text": "hé"}),
    ("multi", [1, 2]),
]


def read(chunks):
    async def body():
        for chunk in chunks:
            yield chunk

    async def go():
        return [event async for event in sse.events(body())]

    return asyncio.run(go())


def test_it_reads_every_frame_whole():
    assert read([STREAM]) == EXPECTED


@pytest.mark.parametrize("line_end", [b"\r\n", b"\r"])
def test_it_reads_crlf_and_cr_line_ends(line_end):
    assert read([STREAM.replace(b"\n", line_end)]) == EXPECTED


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n"])
def test_it_reads_the_same_frames_split_at_every_byte(line_end):
    stream = STREAM.replace(b"\n", line_end)
    for cut in range(1, len(stream)):
        assert read([stream[:cut], stream[cut:]]) == EXPECTED, cut
    assert read([stream[n : n + 1] for n in range(len(stream))]) == EXPECTED


def test_malformed_data_raises_for_the_provider_to_map():
    with pytest.raises(orjson.JSONDecodeError):
        read([b"event: x\ndata: {not json\n\n"])
