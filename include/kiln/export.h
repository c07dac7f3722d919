// KILN_API marks the public API exported from libkiln.so; everything else is hidden.
#pragma once

#if defined(_WIN32)
#define KILN_API
#else
#define KILN_API __attribute__((visibility("default")))
#endif
