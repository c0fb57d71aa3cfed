// Reading: one sensor value with the times it was taken.
#pragma once

#include <string>

#include "clock.h"
#include "value.h"

namespace tg {

struct Reading {
    std::string sensor;  // the sensor's configured name, e.g. greenhouse.temp
    Value value;
    WallTime ts;    // measurement time (wall clock), stamped into events
    MonoTime mono;  // the same instant on the monotonic clock, for durations
};

}  // namespace tg
