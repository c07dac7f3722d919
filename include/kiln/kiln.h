// Kiln's public API: include this one header.
#pragma once

#include "kiln/devices.h"
#include "kiln/dtype.h"
#include "kiln/error.h"
#include "kiln/session.h"
#include "kiln/tensor.h"
