'use strict';
// A test plugin: counts its load() calls in the process and records each
// install() in the database (test table tb_probe_installs).
const { Plugin } = require('@tego/core');
const { pluginClass } = require('../probe-base');
module.exports = pluginClass(Plugin, 'probe');
