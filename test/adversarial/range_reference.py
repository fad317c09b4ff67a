"""
What Swift serves for a GET with a Range, read with Swift's own code (Debian's python3-swift): a swob.Request
carrying the Range header (parsed by swob.Range), answered by a swob.Response with conditional_response=True,
the object's length and Content-Type, and an app_iter with app_iter_range / app_iter_ranges built on
swob.multi_range_iterator, as the object server's DiskFileReader and SLO's SegmentedIterable are. The body is
measured chunk by chunk (object bytes counted, not made, so that large objects cost nothing). For a DLO, its
middleware's own treatment of the Range comes first (dlo.py get_or_head_response): several specs are dropped
(the whole object is served), one is checked against the length (416, or an error for bytes=-0).

Input: one JSON object per line, {"range": str (the header's Latin-1 string) or null, "length": int,
"content_type": str, "dlo": bool}. Output: one JSON object per line, {"status": int, "size": int, "parts": int}
(status 500 where Swift's code raises: nothing is served).
"""
import json
import sys

from swift.common.swob import Request, Response, HTTPRequestedRangeNotSatisfiable, multi_range_iterator


class CountedBody(object):
    """An object's body whose bytes are counted as they would be served, never made."""

    def __init__(self, length):
        self.length = length
        self.counted = 0
        self.parts = 0

    def __iter__(self):
        self.counted += self.length
        self.parts = 1
        return iter([])

    def app_iter_range(self, start, stop):
        self.counted += stop - start
        self.parts += 1
        return iter([])

    def app_iter_ranges(self, ranges, content_type, boundary, size):
        return multi_range_iterator(ranges, content_type, boundary, size, self.app_iter_range)


def served(case):
    headers = {} if case['range'] is None else {'Range': case['range']}
    req = Request.blank('/v1/a/c/o', headers=headers)
    length = case['length']
    if case['dlo']:
        if req.range and len(req.range.ranges) == 1:
            try:
                req.range.ranges_for_length(float('inf'))[0]
            except IndexError:
                return {'status': 500, 'size': 0, 'parts': 0}
            if not req.range.ranges_for_length(length):
                return {'status': 416, 'size': 0, 'parts': 0}
        else:
            req.range = None
            if 'Range' in req.headers:
                del req.headers['Range']
    body = CountedBody(length)
    resp = Response(request=req, app_iter=body, conditional_response=True,
                    headers={'Content-Type': case['content_type'], 'Content-Length': str(length)})
    status = []

    def start_response(s, h, exc_info=None):
        status.append(int(s.split()[0]))

    chunks = resp(req.environ, start_response)
    framing = sum(len(chunk) for chunk in chunks)
    if status[0] == 416:
        return {'status': 416, 'size': 0, 'parts': 0}
    size = framing + body.counted
    # Swift's copy stores Content-Length bytes of what it is served: they must be the same.
    assert size == resp.content_length, (size, resp.content_length)
    return {'status': status[0], 'size': size, 'parts': body.parts}


for line in sys.stdin:
    print(json.dumps(served(json.loads(line))), flush=True)
