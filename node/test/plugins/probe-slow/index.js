'use strict';
// A test plugin whose install() takes its time (the test kills the process
// running it the first time).
const { Plugin } = require('@tego/core');
const { pluginClass } = require('../probe-base');
module.exports = pluginClass(Plugin, 'probe-slow', { slowMs: 4000 });
