/**
 * The SigV4 query-string presigner (s3_redirect's URLs) against the known answer AWS publishes
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html, "Example");
 * test/http/shared-stores.test.ts fetches its URLs from a real gateway (Ceph RGW).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Presigner } from '../../src/store/blobs/s3-presign.js';

describe('Presigner', () => {
  it("signs AWS's example exactly (virtual-hosted bucket, 24 h)", () => {
    const presigner = new Presigner({
      endpoint: 'https://s3.amazonaws.com',
      region: 'us-east-1',
      bucket: 'examplebucket',
      accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
      secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
      forcePathStyle: false,
    });
    const url = presigner.presignGet('test.txt', 86400, new Date('2013-05-24T00:00:00Z'));
    assert.equal(
      url,
      'https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request' +
        '&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404',
    );
  });

  it('path style keeps the endpoint host and puts the bucket in the path; the signing key follows the day', () => {
    const presigner = new Presigner({ endpoint: 'http://127.0.0.1:7480', region: 'us-east-1', bucket: 'b', accessKeyId: 'A', secretAccessKey: 'S', forcePathStyle: true });
    const a = new URL(presigner.presignGet('blobs/sha256/aa/x', 600, new Date('2024-01-01T23:59:59Z')));
    const b = new URL(presigner.presignGet('blobs/sha256/aa/x', 600, new Date('2024-01-02T00:00:00Z')));
    assert.equal(a.host, '127.0.0.1:7480');
    assert.equal(a.pathname, '/b/blobs/sha256/aa/x');
    assert.equal(a.searchParams.get('X-Amz-Credential'), 'A/20240101/us-east-1/s3/aws4_request');
    assert.equal(b.searchParams.get('X-Amz-Credential'), 'A/20240102/us-east-1/s3/aws4_request');
    assert.notEqual(a.searchParams.get('X-Amz-Signature'), b.searchParams.get('X-Amz-Signature'));
  });
});
