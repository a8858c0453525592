'use strict';
// A test plugin whose install() fails.
const { Plugin } = require('@tego/core');
const { pluginClass } = require('../probe-base');
module.exports = pluginClass(Plugin, 'probe-fail', { fail: true });
