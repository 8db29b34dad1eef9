// Status propagation helpers used across yolopipe.
#ifndef YOLOPIPE_BASE_STATUS_MACROS_H_
#define YOLOPIPE_BASE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define YP_RETURN_IF_ERROR(expr)                  \
  do {                                            \
    ::absl::Status yp_status_ = (expr);           \
    if (!yp_status_.ok()) return yp_status_;      \
  } while (0)

#define YP_CONCAT_INNER_(a, b) a##b
#define YP_CONCAT_(a, b) YP_CONCAT_INNER_(a, b)

// `YP_ASSIGN_OR_RETURN(auto x, FunctionReturningStatusOr());`
#define YP_ASSIGN_OR_RETURN(lhs, rexpr) \
  YP_ASSIGN_OR_RETURN_IMPL_(YP_CONCAT_(yp_statusor_, __LINE__), lhs, rexpr)

#define YP_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                              \
  if (!statusor.ok()) return statusor.status();         \
  lhs = std::move(statusor).value()

#endif  // YOLOPIPE_BASE_STATUS_MACROS_H_
