// Task<T> is part of the public API (coroutine forms of Engine calls); it
// lives in include/dmalog/task.h.
#pragma once

#include "dmalog/task.h"
