// The closed set of failures a storage backend reports, shared by the tenant store and the pair
// store interfaces; what the layers above turn into answers. Pure; thread-safe.
#pragma once

#include <string_view>

#include "core/result.h"

namespace callgate {

enum class StoreError {
  kNotFound,       // a referenced tenant object does not exist
  kAlreadyExists,  // the id (or phone_number_id) is taken
  kInvalid,        // the data could not be decoded or violates a constraint
  kUnavailable,    // I/O failure, lock timeout, store closed
};

constexpr std::string_view StoreErrorName(StoreError error) {
  switch (error) {
    case StoreError::kNotFound:
      return "not found";
    case StoreError::kAlreadyExists:
      return "already exists";
    case StoreError::kInvalid:
      return "invalid";
    case StoreError::kUnavailable:
      return "unavailable";
  }
  return "unknown";
}

template <class T>
using StoreResult = Result<T, StoreError>;
struct Ok {};
using StoreStatus = StoreResult<Ok>;

}  // namespace callgate
