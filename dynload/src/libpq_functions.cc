// The libpq functions rocky calls, forwarding to libpq.so.5 loaded at first use (see dynload.h). Each has the
// signature <libpq-fe.h> declares (the compiler checks them against it); hidden, so that the executable never
// exports them and the loaded libpq keeps calling its own. Without the library, each fails as libpq's own
// documentation allows for a failed connection: NULL connections and results, CONNECTION_BAD, -1 from the
// COPY calls; Require() is what says why.
#include <libpq-fe.h>

#include "rocky/dynload/dynload.h"

namespace {

template <typename F>
F Fn(F /*declared*/, const char* name) {
  return reinterpret_cast<F>(rocky::dynload::Function(rocky::dynload::Library::kLibpq, name));
}

char kNotLoaded[] = "libpq.so.5 could not be loaded\n";
char kEmpty[] = "";

}  // namespace

#define ROCKY_HIDDEN __attribute__((visibility("hidden")))
// One forwarding function: `fallback` is returned when libpq cannot be loaded.
#define ROCKY_FORWARD(ret, name, params, args, fallback) \
  ROCKY_HIDDEN ret name params {                         \
    auto f = Fn(&name, #name);                           \
    return f != nullptr ? f args : fallback;             \
  }
#define ROCKY_FORWARD_VOID(name, params, args)           \
  ROCKY_HIDDEN void name params {                        \
    if (auto f = Fn(&name, #name); f != nullptr) f args; \
  }

extern "C" {

ROCKY_FORWARD(PGconn*, PQconnectdb, (const char* conninfo), (conninfo), nullptr)
ROCKY_FORWARD(PGconn*, PQconnectdbParams,
              (const char* const* keywords, const char* const* values, int expand_dbname),
              (keywords, values, expand_dbname), nullptr)
ROCKY_FORWARD_VOID(PQfinish, (PGconn * conn), (conn))
ROCKY_FORWARD_VOID(PQreset, (PGconn * conn), (conn))
ROCKY_FORWARD(ConnStatusType, PQstatus, (const PGconn* conn), (conn), CONNECTION_BAD)
ROCKY_FORWARD(PGTransactionStatusType, PQtransactionStatus, (const PGconn* conn), (conn), PQTRANS_UNKNOWN)
ROCKY_FORWARD(char*, PQerrorMessage, (const PGconn* conn), (conn), kNotLoaded)
ROCKY_FORWARD(char*, PQpass, (const PGconn* conn), (conn), nullptr)
ROCKY_FORWARD(int, PQserverVersion, (const PGconn* conn), (conn), 0)
ROCKY_FORWARD(PQnoticeProcessor, PQsetNoticeProcessor, (PGconn * conn, PQnoticeProcessor proc, void* arg),
              (conn, proc, arg), nullptr)
ROCKY_FORWARD(PQconninfoOption*, PQconninfoParse, (const char* conninfo, char** errmsg), (conninfo, errmsg),
              (errmsg != nullptr ? (*errmsg = nullptr) : nullptr, nullptr))
ROCKY_FORWARD_VOID(PQconninfoFree, (PQconninfoOption * options), (options))

ROCKY_FORWARD(PGresult*, PQexec, (PGconn * conn, const char* query), (conn, query), nullptr)
ROCKY_FORWARD(PGresult*, PQexecParams,
              (PGconn * conn, const char* command, int nParams, const Oid* paramTypes,
               const char* const* paramValues, const int* paramLengths, const int* paramFormats,
               int resultFormat),
              (conn, command, nParams, paramTypes, paramValues, paramLengths, paramFormats, resultFormat),
              nullptr)
ROCKY_FORWARD(PGresult*, PQprepare,
              (PGconn * conn, const char* stmtName, const char* query, int nParams, const Oid* paramTypes),
              (conn, stmtName, query, nParams, paramTypes), nullptr)
ROCKY_FORWARD(PGresult*, PQexecPrepared,
              (PGconn * conn, const char* stmtName, int nParams, const char* const* paramValues,
               const int* paramLengths, const int* paramFormats, int resultFormat),
              (conn, stmtName, nParams, paramValues, paramLengths, paramFormats, resultFormat), nullptr)
ROCKY_FORWARD(int, PQsendQueryParams,
              (PGconn * conn, const char* command, int nParams, const Oid* paramTypes,
               const char* const* paramValues, const int* paramLengths, const int* paramFormats,
               int resultFormat),
              (conn, command, nParams, paramTypes, paramValues, paramLengths, paramFormats, resultFormat), 0)
ROCKY_FORWARD(PGresult*, PQgetResult, (PGconn * conn), (conn), nullptr)
ROCKY_FORWARD_VOID(PQclear, (PGresult * res), (res))
ROCKY_FORWARD(ExecStatusType, PQresultStatus, (const PGresult* res), (res), PGRES_FATAL_ERROR)
ROCKY_FORWARD(char*, PQresultErrorMessage, (const PGresult* res), (res), kNotLoaded)
ROCKY_FORWARD(char*, PQresultErrorField, (const PGresult* res, int fieldcode), (res, fieldcode), nullptr)
ROCKY_FORWARD(int, PQntuples, (const PGresult* res), (res), 0)
ROCKY_FORWARD(int, PQnfields, (const PGresult* res), (res), 0)
ROCKY_FORWARD(char*, PQgetvalue, (const PGresult* res, int tup_num, int field_num), (res, tup_num, field_num),
              kEmpty)
ROCKY_FORWARD(int, PQgetisnull, (const PGresult* res, int tup_num, int field_num), (res, tup_num, field_num),
              1)
ROCKY_FORWARD(int, PQgetlength, (const PGresult* res, int tup_num, int field_num), (res, tup_num, field_num),
              0)
ROCKY_FORWARD(char*, PQcmdTuples, (PGresult * res), (res), kEmpty)
ROCKY_FORWARD(int, PQputCopyData, (PGconn * conn, const char* buffer, int nbytes), (conn, buffer, nbytes), -1)
ROCKY_FORWARD(int, PQputCopyEnd, (PGconn * conn, const char* errormsg), (conn, errormsg), -1)
ROCKY_FORWARD(int, PQgetCopyData, (PGconn * conn, char** buffer, int async), (conn, buffer, async), -1)
ROCKY_FORWARD_VOID(PQfreemem, (void* ptr), (ptr))

}  // extern "C"
