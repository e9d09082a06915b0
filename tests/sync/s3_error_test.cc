// S3 error responses: AWS's documented XML shapes (S3's <Error>, STS's <ErrorResponse>), the
// transient/permanent classification the retry policy relies on, and bodies that are not S3 errors at all.
#include "rocky/sync/s3_error.h"

#include <doctest/doctest.h>

using namespace rocky::sync;

TEST_CASE("S3 error: the documented NoSuchKey shape is parsed field by field") {
  // From https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html
  const char* body = R"(<?xml version="1.0" encoding="UTF-8"?>
<Error>
  <Code>NoSuchKey</Code>
  <Message>The resource you requested does not exist</Message>
  <Resource>/mybucket/myfoto.jpg</Resource>
  <RequestId>4442587FB7D0A2F9</RequestId>
  <HostId>ZjYq/dHC+kL8bMsX1yGNDpfZbyj2yU0tReJdu1ZLo=</HostId>
</Error>)";
  S3Error e = ParseS3Error(404, body);
  CHECK(e.code == "NoSuchKey");
  CHECK(e.message == "The resource you requested does not exist");
  CHECK(e.request_id == "4442587FB7D0A2F9");
  CHECK(e.host_id == "ZjYq/dHC+kL8bMsX1yGNDpfZbyj2yU0tReJdu1ZLo=");
  CHECK(e.http_status == 404);
  CHECK(e.kind == S3ErrorKind::kNotFound);
  CHECK(!e.transient());
  CHECK(e.ToStatus().IsNotFound());
  CHECK(e.ToString() ==
        "S3 NoSuchKey (HTTP 404, not found, permanent): The resource you requested does not exist "
        "[request id 4442587FB7D0A2F9]");
}

TEST_CASE("S3 error: classification, transient vs permanent") {
  struct Case {
    int status;
    const char* code;
    S3ErrorKind kind;
    bool transient;
  };
  const Case cases[] = {
      {503, "SlowDown", S3ErrorKind::kThrottled, true},
      {429, "", S3ErrorKind::kThrottled, true},
      {500, "InternalError", S3ErrorKind::kServerError, true},
      {502, "", S3ErrorKind::kServerError, true},
      {503, "ServiceUnavailable", S3ErrorKind::kServerError, true},
      {400, "RequestTimeout", S3ErrorKind::kTimeout, true},  // S3: "your socket connection was not read from"
      {408, "", S3ErrorKind::kTimeout, true},
      {403, "AccessDenied", S3ErrorKind::kAccessDenied, false},
      {403, "", S3ErrorKind::kAccessDenied, false},  // HEAD: no body
      {403, "InvalidAccessKeyId", S3ErrorKind::kBadCredentials, false},
      {403, "SignatureDoesNotMatch", S3ErrorKind::kBadCredentials, false},
      {400, "ExpiredToken", S3ErrorKind::kBadCredentials, false},
      {404, "NoSuchBucket", S3ErrorKind::kNoSuchBucket, false},
      {404, "", S3ErrorKind::kNotFound, false},
      {400, "InvalidArgument", S3ErrorKind::kBadRequest, false},
      {400, "", S3ErrorKind::kBadRequest, false},
      {412, "PreconditionFailed", S3ErrorKind::kPreconditionFailed, false},
      {409, "ConditionalRequestConflict", S3ErrorKind::kConflict, false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.status);
    CAPTURE(c.code);
    std::string body = std::string(c.code).empty()
                           ? std::string()
                           : std::string("<Error><Code>") + c.code + "</Code><Message>m</Message></Error>";
    S3Error e = ParseS3Error(c.status, body);
    CHECK(e.kind == c.kind);
    CHECK(e.transient() == c.transient);
    CHECK(!e.code.empty());
  }
  CHECK(ParseS3Error(412, "").ToStatus().IsBusy());
  CHECK(ParseS3Error(404, "").code == "NotFound");
}

TEST_CASE("S3 error: STS's ErrorResponse with the request id outside <Error>, namespaces, entities, CDATA") {
  // From https://docs.aws.amazon.com/STS/latest/APIReference/CommonErrors.html (the Query API error shape).
  const char* sts = R"(<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>Sender</Type>
    <Code>InvalidIdentityToken</Code>
    <Message>Couldn&apos;t retrieve verification key &amp; &#x41;&#66;</Message>
  </Error>
  <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
</ErrorResponse>)";
  S3Error e = ParseS3Error(400, sts);
  CHECK(e.code == "InvalidIdentityToken");
  CHECK(e.message == "Couldn't retrieve verification key & AB");
  CHECK(e.request_id == "c6104cbe-af31-11e0-8154-cbc7ccf896c7");
  CHECK(e.kind == S3ErrorKind::kBadCredentials);

  S3Error ns =
      ParseS3Error(403, "<s3:Error a='>'><s3:Code><![CDATA[AccessDenied]]></s3:Code><!-- x --></s3:Error>");
  CHECK(ns.code == "AccessDenied");
  CHECK(ns.kind == S3ErrorKind::kAccessDenied);
}

TEST_CASE("S3 error: bodies that are not S3 errors give an error from the status alone, safe to print") {
  S3Error html = ParseS3Error(502, "<html><body><h1>502 Bad Gateway</h1></body></html>", "REQ123");
  CHECK(html.code == "BadGateway");
  CHECK(html.message.empty());
  CHECK(html.request_id == "REQ123");
  CHECK(html.transient());

  S3Error truncated = ParseS3Error(500, "<Error><Code>InternalErr");
  CHECK(truncated.code == "InternalError");
  CHECK(truncated.transient());

  std::string control =
      "<Error><Code>Bad\x01"
      "Code</Code><Message>line1\nline2\x1b[31m\xff</Message></Error>";
  S3Error c = ParseS3Error(400, control);
  CHECK(c.code == "BadCode");
  CHECK(c.message == "line1 line2?[31m?");

  std::string long_message = "<Error><Code>X</Code><Message>" + std::string(5000, 'a') + "</Message></Error>";
  CHECK(ParseS3Error(400, long_message).message.size() == 512);

  std::string nested = "<Error><Error><Code>Inner</Code></Error><Code>Outer</Code></Error>";
  CHECK(ParseS3Error(400, nested).code == "Inner");  // the first <Code> inside the outer <Error>
}
