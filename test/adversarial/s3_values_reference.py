"""
How Swift's s3api (Debian's python3-swift) reads the S3 values that decide what it stores, with its own
functions and the expressions its controllers apply to them (controllers/multi_upload.py PartController.PUT,
s3request.py S3Request._validate_headers, check_copy_source and to_swift_req, swob's Range):

  {"kind": "part", "query": str}        -> {"part": bool, "upload": bool, "number": int|null, "upload_id": str|null}
  {"kind": "range", "value": str, "sizes": [int]}
                                        -> {"valid": bool, "copied": [int|null per size]}
  {"kind": "source", "value": str}      -> {"error": "path"|"query"|"split"|null, "container": str, "object": str,
                                            "swift_query": {name: value}}
  {"kind": "versioning", "body": str}   -> {"status": str|null} (PUT Bucket versioning's Status; null: MalformedXML)

Strings are WSGI strings (one code point per byte of the request), as eventlet hands them to Swift.
"""
import json
import sys

from six.moves.urllib.parse import parse_qsl, quote, unquote

from swift.common import swob
from swift.common.request_helpers import check_path_header, get_param
from swift.common.utils import split_path


def part(query):
    req = swob.Request.blank('/b/k', environ={'QUERY_STRING': query})
    out = {'part': 'partNumber' in req.params, 'upload': 'uploadId' in req.params, 'number': None, 'upload_id': None}
    try:
        out['number'] = int(get_param(req, 'partNumber'))
    except Exception:
        pass
    try:
        out['upload_id'] = get_param(req, 'uploadId')
    except Exception:
        out['upload_id'] = None
    return out


def copy_range(value, sizes):
    try:
        rng = swob.Range(value)
        if len(rng.ranges) != 1:
            raise ValueError()
    except ValueError:
        return {'valid': False, 'copied': []}
    copied = []
    for size in sizes:
        ranges = rng.ranges_for_length(size)
        # s3api refuses a range the source cannot satisfy (nothing is copied).
        copied.append(ranges[0][1] - ranges[0][0] if ranges else None)
    return {'valid': True, 'copied': copied}


def source(value):
    out = {'error': None, 'container': None, 'object': None, 'swift_query': {}}
    req = swob.Request.blank('/b/k', headers={'X-Amz-Copy-Source': value})
    try:
        check_path_header(req, 'X-Amz-Copy-Source', 2, '')
    except swob.HTTPException:
        out['error'] = 'path'
        return out
    src_path, qs = value.partition('?')[::2]
    parsed = parse_qsl(qs, True)
    if not parsed:
        query = {}
    elif len(parsed) == 1 and parsed[0][0] == 'versionId':
        query = {'version-id': parsed[0][1]}
    else:
        out['error'] = 'query'
        return out
    src_path = unquote(src_path)
    src_path = src_path if src_path.startswith('/') else ('/' + src_path)
    try:
        src_bucket, src_obj = split_path(src_path, 0, 2, True)
    except ValueError:
        out['error'] = 'split'
        return out
    if not src_obj:
        out['error'] = 'split'
        return out
    # What the PUT s3api makes carries: X-Copy-From, and the version appended to its query as it is.
    header = quote(src_path)
    if query:
        header += '?versionId=' + query['version-id']
    copy_from, version = header.partition('?versionId=')[::2]
    swift_qs = 'version-id=' + version if version else ''
    # Swift's copy reads X-Copy-From percent-decoded, as UTF-8.
    container, obj = split_path(unquote(copy_from), 2, 2, True)
    try:
        swift_query = dict(swob.Request.blank('/x', environ={'QUERY_STRING': swift_qs}).params)
    except Exception:
        out['error'] = 'swift-query'
        return out
    out.update(container=container, object=obj, swift_query=swift_query)
    return out


def versioning(body):
    # controllers/versioning.py VersioningController.PUT, after req.xml() read the body.
    from swift.common.middleware.s3api.etree import fromstring, XMLSyntaxError, DocumentInvalid
    try:
        elem = fromstring(body.encode('latin-1'), 'VersioningConfiguration')
        status = elem.find('./Status').text
    except (XMLSyntaxError, DocumentInvalid):
        return {'status': None}
    except Exception:
        return {'status': None}
    return {'status': status if status in ('Enabled', 'Suspended') else None}


for line in sys.stdin:
    case = json.loads(line)
    if case['kind'] == 'part':
        result = part(case['query'])
    elif case['kind'] == 'range':
        result = copy_range(case['value'], case['sizes'])
    elif case['kind'] == 'versioning':
        result = versioning(case['body'])
    else:
        result = source(case['value'])
    print(json.dumps(result), flush=True)
