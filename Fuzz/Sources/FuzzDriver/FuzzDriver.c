// The declaration in include/FuzzDriver.h is all this target provides; a C target needs a source.
#include "FuzzDriver.h"
