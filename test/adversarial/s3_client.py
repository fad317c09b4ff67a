"""
S3 requests for the adversarial suite, made and signed by boto3 (Debian's python3-boto3): a signer that is
not the proxy's. One JSON command per line on stdin, one JSON answer per line on stdout:
  {"op": "create_bucket"|"put_object"|"copy_object"|"multipart"|"initiate"|"upload_part"|"upload_part_copy"
   |"put_versioning"|"presign"|"presign_op", ...}, or {"op": "parallel", "commands": [...]}: the commands at once,
   one thread each, answered as {"ok": true, "answers": [...]} in their order.
"query" (optional) replaces query parameters' values, as sent (already percent-encoded), before signing: the
spellings of a value that boto3 never sends, signed as the client's own.
Answers: {"ok": true, ...} or {"ok": false, "status": int, "code": str}.
"""
import json
import sys

import boto3
import botocore.config
from botocore.exceptions import ClientError


def client(endpoint, access, secret, signature='s3v4', extra_headers=None, query=None):
    config = botocore.config.Config(signature_version=signature, s3={'addressing_style': 'path'},
                                    retries={'max_attempts': 0, 'mode': 'standard'})
    # A session of its own: boto3's default session is not safe to make clients in from several threads.
    s3 = boto3.session.Session().client('s3', endpoint_url=endpoint, aws_access_key_id=access, aws_secret_access_key=secret,
                      region_name='us-east-1', config=config)
    if signature == 's3':
        # botocore's V2 signer signs a bucket as "/bucket/" while it sends "/bucket"; Swift's s3api signs
        # the path it receives, so send the path that was signed (s3api reads "/bucket/" as the bucket).
        def bucket_slash(request, **_):
            scheme, rest = request.url.split('://', 1)
            host, _, path = rest.partition('/')
            path, question, query = path.partition('?')
            if path and '/' not in path:
                request.url = '%s://%s/%s/%s%s' % (scheme, host, path, question, query)
        s3.meta.events.register('before-sign.s3.*', bucket_slash)
    if extra_headers:
        def add_headers(request, **_):
            for name, value in extra_headers.items():
                if value is None:
                    del request.headers[name]  # a header boto3 adds on its own, left out
                else:
                    request.headers[name] = value
        s3.meta.events.register('before-sign.s3.*', add_headers)
    if query:
        def replace_query(request, **_):
            base, _, current = request.url.partition('?')
            fields = [field for field in current.split('&') if field.partition('=')[0] not in query]
            fields += ['%s=%s' % (name, value) for name, value in query.items()]
            request.url = base + '?' + '&'.join(fields)
        s3.meta.events.register('before-sign.s3.*', replace_query)
    return s3


def run(cmd):
    s3 = client(cmd['endpoint'], cmd['access'], cmd['secret'], cmd.get('signature', 's3v4'), cmd.get('headers'), cmd.get('query'))
    op = cmd['op']
    if op == 'create_bucket':
        s3.create_bucket(Bucket=cmd['bucket'])
    elif op == 'put_object':
        s3.put_object(Bucket=cmd['bucket'], Key=cmd['key'], Body=b'x' * cmd['size'])
    elif op == 'copy_object':
        s3.copy_object(Bucket=cmd['bucket'], Key=cmd['key'], CopySource={'Bucket': cmd['src_bucket'], 'Key': cmd['src_key']})
    elif op == 'multipart':
        upload = s3.create_multipart_upload(Bucket=cmd['bucket'], Key=cmd['key'])
        parts = []
        for number, size in enumerate(cmd['parts'], start=1):
            try:
                part = s3.upload_part(Bucket=cmd['bucket'], Key=cmd['key'], UploadId=upload['UploadId'], PartNumber=number, Body=b'p' * size)
            except ClientError as e:
                return {'ok': False, 'status': e.response['ResponseMetadata']['HTTPStatusCode'], 'code': e.response['Error']['Code'], 'stage': 'part %d' % number}
            parts.append({'PartNumber': number, 'ETag': part['ETag']})
        s3.complete_multipart_upload(Bucket=cmd['bucket'], Key=cmd['key'], UploadId=upload['UploadId'], MultipartUpload={'Parts': parts})
    elif op == 'initiate':
        return {'ok': True, 'upload_id': s3.create_multipart_upload(Bucket=cmd['bucket'], Key=cmd['key'])['UploadId']}
    elif op == 'upload_part':
        part = s3.upload_part(Bucket=cmd['bucket'], Key=cmd['key'], UploadId=cmd['upload_id'], PartNumber=cmd['part'], Body=b'p' * cmd['size'])
        return {'ok': True, 'etag': part['ETag']}
    elif op == 'upload_part_copy':
        extra = {'CopySourceRange': cmd['copy_range']} if 'copy_range' in cmd else {}
        s3.upload_part_copy(Bucket=cmd['bucket'], Key=cmd['key'], UploadId=cmd['upload_id'], PartNumber=cmd['part'], CopySource=cmd['copy_source'], **extra)
    elif op == 'put_versioning':
        s3.put_bucket_versioning(Bucket=cmd['bucket'], VersioningConfiguration={'Status': cmd.get('status', 'Enabled')})
    elif op == 'presign':
        return {'ok': True, 'url': s3.generate_presigned_url('put_object', Params={'Bucket': cmd['bucket'], 'Key': cmd['key']}, ExpiresIn=300)}
    elif op == 'presign_op':
        # Any operation's presigned URL (its payload unsigned): the test sends the request and holds its body.
        return {'ok': True, 'url': s3.generate_presigned_url(cmd['operation'], Params=cmd['params'], ExpiresIn=300)}
    else:
        raise ValueError(op)
    return {'ok': True}


def answer(command):
    if command.get('op') == 'parallel':
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(max_workers=len(command['commands']) or 1) as pool:
            return {'ok': True, 'answers': list(pool.map(answer, command['commands']))}
    try:
        return run(command)
    except ClientError as e:
        return {'ok': False, 'status': e.response['ResponseMetadata']['HTTPStatusCode'], 'code': e.response['Error']['Code']}


for line in sys.stdin:
    print(json.dumps(answer(json.loads(line))), flush=True)
