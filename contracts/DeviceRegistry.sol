// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

/// @title DeviceRegistry
/// @notice Registered devices of the network. A device's id is the address of its signing key.
/// Onboarding needs the device key's EIP-712 signature over (owner, deviceClass) in this
/// contract's domain (chainId and address included): proof of possession, valid on this chain and
/// registry only. A device class may require an attestation from a maker registered for it.
/// Owners transfer, relocate (with a cooldown) and retire their devices; retirement is final.
/// The EIP-712 domain (name "depin", version "1") is also the domain of device readings.
/// Governance also keeps the list of the network's gateways (at most MAX_GATEWAYS), each with the
/// URL validators fetch its sealed epoch batches from; a gateway may change its URL or leave.
contract DeviceRegistry is Ownable, EIP712 {
    enum DeviceStatus {
        None,
        Active,
        Retired
    }

    struct Device {
        address owner;
        uint32 deviceClass;
        DeviceStatus status;
        uint64 h3Cell;
        uint64 registeredAt;
        uint64 relocatedAt;
    }

    struct DeviceClass {
        bool exists;
        bool requiresMaker;
    }

    /// @notice One device of a registerMany call: register's arguments.
    struct Registration {
        address device;
        uint32 deviceClass;
        uint64 h3Cell;
        bytes deviceSignature;
        bytes makerSignature;
    }

    bytes32 private constant _REGISTRATION_TYPEHASH =
        keccak256("DeviceRegistration(address owner,uint32 deviceClass)");
    bytes32 private constant _ATTESTATION_TYPEHASH = keccak256("MakerAttestation(address device,uint32 deviceClass)");

    /// @notice Raised when registering a device id that is or was registered.
    error RegistryDeviceExists(address device);
    /// @notice Raised when a device is not registered.
    error RegistryUnknownDevice(address device);
    /// @notice Raised when acting on a retired device.
    error RegistryDeviceRetired(address device);
    /// @notice Raised when the device's proof of possession does not recover to the device.
    error RegistryInvalidDeviceSignature(address device, address recovered);
    /// @notice Raised when a class is unknown.
    error RegistryUnknownClass(uint32 deviceClass);
    /// @notice Raised when a class already exists.
    error RegistryClassExists(uint32 deviceClass);
    /// @notice Raised when a class needs a maker attestation and none valid was given.
    error RegistryInvalidMakerAttestation(address device, address recovered);
    /// @notice Raised when the caller does not own the device.
    error RegistryNotDeviceOwner(address device, address caller);
    /// @notice Raised when an H3 cell index is not a valid cell (mode 1) index.
    error RegistryInvalidCell(uint64 h3Cell);
    /// @notice Raised when relocating before the cooldown has passed.
    error RegistryRelocationCooldown(address device, uint64 availableAt);
    /// @notice Raised when transferring to the zero address.
    error RegistryInvalidOwner(address owner);
    /// @notice Raised when adding a gateway that is already listed.
    error RegistryGatewayExists(address gateway);
    /// @notice Raised when a gateway is not listed.
    error RegistryUnknownGateway(address gateway);
    /// @notice Raised when adding a gateway to a full list.
    error RegistryGatewayLimit(uint256 maxGateways);
    /// @notice Raised when a gateway URL is empty or longer than MAX_GATEWAY_URL_BYTES.
    error RegistryInvalidGatewayUrl(uint256 length);
    /// @notice Raised when the caller is neither governance nor the gateway itself.
    error RegistryNotGatewayOrOwner(address gateway, address caller);

    event DeviceClassAdded(uint32 indexed deviceClass, bool requiresMaker);
    event MakerSet(address indexed maker, uint32 indexed deviceClass, bool allowed);
    event DeviceRegistered(
        address indexed device, address indexed owner, uint32 indexed deviceClass, uint64 h3Cell, address maker
    );
    event DeviceTransferred(address indexed device, address indexed from, address indexed to);
    event DeviceRelocated(address indexed device, uint64 fromCell, uint64 toCell);
    event DeviceRetired(address indexed device, address indexed owner);
    event GatewayAdded(address indexed gateway, string url);
    event GatewayUrlChanged(address indexed gateway, string url);
    event GatewayRemoved(address indexed gateway);

    /// @notice Gateways listed at most: every validator fetches from each of them every epoch.
    uint256 public constant MAX_GATEWAYS = 32;
    /// @notice Longest gateway URL, in bytes.
    uint256 public constant MAX_GATEWAY_URL_BYTES = 256;

    uint64 private immutable _relocationCooldown;
    mapping(address device => Device) private _devices;
    mapping(uint32 deviceClass => DeviceClass) private _classes;
    mapping(address maker => mapping(uint32 deviceClass => bool)) private _makers;
    uint256 private _activeDevices;
    address[] private _gateways;
    mapping(address gateway => string) private _gatewayUrls;
    mapping(address gateway => uint256) private _gatewayIndexPlusOne;

    /// @param admin_ may add device classes and makers (the network's governance)
    /// @param relocationCooldown_ seconds a device must wait between two relocations
    constructor(address admin_, uint64 relocationCooldown_) Ownable(admin_) EIP712("depin", "1") {
        _relocationCooldown = relocationCooldown_;
    }

    // ---------------------------------------------------------------- governance

    /// @notice Adds a device class; `requiresMaker` makes a maker attestation mandatory for it.
    function addDeviceClass(uint32 deviceClass, bool requiresMaker) external onlyOwner {
        if (_classes[deviceClass].exists) revert RegistryClassExists(deviceClass);
        _classes[deviceClass] = DeviceClass({exists: true, requiresMaker: requiresMaker});
        emit DeviceClassAdded(deviceClass, requiresMaker);
    }

    /// @notice Allows or disallows `maker` to attest devices of `deviceClass`.
    function setMaker(address maker, uint32 deviceClass, bool allowed) external onlyOwner {
        if (!_classes[deviceClass].exists) revert RegistryUnknownClass(deviceClass);
        _makers[maker][deviceClass] = allowed;
        emit MakerSet(maker, deviceClass, allowed);
    }

    /// @notice Lists `gateway` (its operator's address) with the URL of its batch API.
    function addGateway(address gateway, string calldata url) external onlyOwner {
        if (_gatewayIndexPlusOne[gateway] != 0) revert RegistryGatewayExists(gateway);
        if (_gateways.length >= MAX_GATEWAYS) revert RegistryGatewayLimit(MAX_GATEWAYS);
        _requireValidUrl(url);
        _gateways.push(gateway);
        _gatewayIndexPlusOne[gateway] = _gateways.length;
        _gatewayUrls[gateway] = url;
        emit GatewayAdded(gateway, url);
    }

    /// @notice Changes a listed gateway's URL; by governance or the gateway itself.
    function setGatewayUrl(address gateway, string calldata url) external {
        _requireGatewayOrOwner(gateway);
        _requireValidUrl(url);
        _gatewayUrls[gateway] = url;
        emit GatewayUrlChanged(gateway, url);
    }

    /// @notice Takes a gateway off the list; by governance or the gateway itself.
    function removeGateway(address gateway) external {
        _requireGatewayOrOwner(gateway);
        uint256 index = _gatewayIndexPlusOne[gateway] - 1;
        address last = _gateways[_gateways.length - 1];
        _gateways[index] = last;
        _gatewayIndexPlusOne[last] = index + 1;
        _gateways.pop();
        delete _gatewayIndexPlusOne[gateway];
        delete _gatewayUrls[gateway];
        emit GatewayRemoved(gateway);
    }

    // ---------------------------------------------------------------- owners

    /// @notice Registers `device` to the caller.
    /// @param device the device key's address (the device id)
    /// @param deviceClass a class added by governance
    /// @param h3Cell the H3 cell index where the device stands
    /// @param deviceSignature the device key's EIP-712 signature of DeviceRegistration(owner = caller, deviceClass)
    /// @param makerSignature a registered maker's EIP-712 signature of MakerAttestation(device, deviceClass),
    /// or empty when the class does not require one
    function register(
        address device,
        uint32 deviceClass,
        uint64 h3Cell,
        bytes calldata deviceSignature,
        bytes calldata makerSignature
    ) external {
        _register(device, deviceClass, h3Cell, deviceSignature, makerSignature);
    }

    /// @notice Registers every device of `registrations` to the caller, each exactly as `register`
    /// would (its own proof of possession, its maker's attestation where its class needs one), in
    /// one transaction: a fleet onboards at hundreds of devices a second. One that cannot be
    /// registered reverts the whole call, with that device's error.
    function registerMany(Registration[] calldata registrations) external {
        for (uint256 i = 0; i < registrations.length; i++) {
            Registration calldata r = registrations[i];
            _register(r.device, r.deviceClass, r.h3Cell, r.deviceSignature, r.makerSignature);
        }
    }

    function _register(
        address device,
        uint32 deviceClass,
        uint64 h3Cell,
        bytes calldata deviceSignature,
        bytes calldata makerSignature
    ) private {
        DeviceClass memory cls = _classes[deviceClass];
        if (!cls.exists) revert RegistryUnknownClass(deviceClass);
        DeviceStatus status = _devices[device].status;
        if (status == DeviceStatus.Retired) revert RegistryDeviceRetired(device);
        if (status == DeviceStatus.Active) revert RegistryDeviceExists(device);
        _requireValidCell(h3Cell);

        _requirePossession(device, deviceClass, deviceSignature);
        address maker;
        if (makerSignature.length > 0 || cls.requiresMaker) maker = _requireMaker(device, deviceClass, makerSignature);

        uint64 nowTs = uint64(block.timestamp);
        _devices[device] = Device({
            owner: msg.sender,
            deviceClass: deviceClass,
            status: DeviceStatus.Active,
            h3Cell: h3Cell,
            registeredAt: nowTs,
            relocatedAt: nowTs
        });
        _activeDevices += 1;
        emit DeviceRegistered(device, msg.sender, deviceClass, h3Cell, maker);
    }

    /// @notice Transfers an active device to `to`.
    function transfer(address device, address to) external {
        Device storage d = _ownedActive(device);
        if (to == address(0)) revert RegistryInvalidOwner(to);
        address from = d.owner;
        d.owner = to;
        emit DeviceTransferred(device, from, to);
    }

    /// @notice Moves an active device to another H3 cell, at most once per cooldown.
    function relocate(address device, uint64 h3Cell) external {
        Device storage d = _ownedActive(device);
        _requireValidCell(h3Cell);
        uint64 availableAt = d.relocatedAt + _relocationCooldown;
        if (block.timestamp < availableAt) revert RegistryRelocationCooldown(device, availableAt);
        uint64 fromCell = d.h3Cell;
        d.h3Cell = h3Cell;
        d.relocatedAt = uint64(block.timestamp);
        emit DeviceRelocated(device, fromCell, h3Cell);
    }

    /// @notice Retires an active device for good: it can never be registered or used again.
    function retire(address device) external {
        Device storage d = _ownedActive(device);
        d.status = DeviceStatus.Retired;
        _activeDevices -= 1;
        emit DeviceRetired(device, d.owner);
    }

    // ---------------------------------------------------------------- views

    /// @notice The record of `device` (status None when never registered).
    function getDevice(address device) external view returns (Device memory) {
        return _devices[device];
    }

    /// @notice The status of each of `devices` (None when never registered): what a fleet checks,
    /// in one call, before it registers.
    function statusesOf(address[] calldata devices) external view returns (DeviceStatus[] memory statuses) {
        statuses = new DeviceStatus[](devices.length);
        for (uint256 i = 0; i < devices.length; i++) {
            statuses[i] = _devices[devices[i]].status;
        }
    }

    /// @notice True when `device` is registered and not retired.
    function isActive(address device) external view returns (bool) {
        return _devices[device].status == DeviceStatus.Active;
    }

    /// @notice The class record (exists, requiresMaker).
    function getDeviceClass(uint32 deviceClass) external view returns (DeviceClass memory) {
        return _classes[deviceClass];
    }

    /// @notice True when `maker` may attest devices of `deviceClass`.
    function isMaker(address maker, uint32 deviceClass) external view returns (bool) {
        return _makers[maker][deviceClass];
    }

    /// @notice Number of active devices.
    function activeDevices() external view returns (uint256) {
        return _activeDevices;
    }

    /// @notice The listed gateways and their URLs, in list order.
    function gateways() external view returns (address[] memory ids, string[] memory urls) {
        ids = _gateways;
        urls = new string[](ids.length);
        for (uint256 i = 0; i < ids.length; i++) {
            urls[i] = _gatewayUrls[ids[i]];
        }
    }

    /// @notice Seconds between two relocations of one device.
    function relocationCooldown() external view returns (uint64) {
        return _relocationCooldown;
    }

    /// @notice The EIP-712 domain separator shared by registrations and device readings.
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ---------------------------------------------------------------- internals

    /// @dev The device key signed DeviceRegistration(owner = caller, deviceClass) in this domain.
    function _requirePossession(address device, uint32 deviceClass, bytes calldata signature) private view {
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(_REGISTRATION_TYPEHASH, msg.sender, deviceClass)));
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, signature);
        if (err != ECDSA.RecoverError.NoError || recovered != device) {
            revert RegistryInvalidDeviceSignature(device, recovered);
        }
    }

    /// @dev A maker registered for the class signed MakerAttestation(device, deviceClass); returns the maker.
    function _requireMaker(address device, uint32 deviceClass, bytes calldata signature)
        private
        view
        returns (address maker)
    {
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(_ATTESTATION_TYPEHASH, device, deviceClass)));
        ECDSA.RecoverError err;
        (maker, err,) = ECDSA.tryRecover(digest, signature);
        if (err != ECDSA.RecoverError.NoError || !_makers[maker][deviceClass]) {
            revert RegistryInvalidMakerAttestation(device, maker);
        }
    }

    function _ownedActive(address device) private view returns (Device storage d) {
        d = _devices[device];
        if (d.status == DeviceStatus.None) revert RegistryUnknownDevice(device);
        if (d.status == DeviceStatus.Retired) revert RegistryDeviceRetired(device);
        if (d.owner != msg.sender) revert RegistryNotDeviceOwner(device, msg.sender);
    }

    function _requireGatewayOrOwner(address gateway) private view {
        if (_gatewayIndexPlusOne[gateway] == 0) revert RegistryUnknownGateway(gateway);
        if (msg.sender != gateway && msg.sender != owner()) revert RegistryNotGatewayOrOwner(gateway, msg.sender);
    }

    function _requireValidUrl(string calldata url) private pure {
        uint256 length = bytes(url).length;
        if (length == 0 || length > MAX_GATEWAY_URL_BYTES) revert RegistryInvalidGatewayUrl(length);
    }

    /// @dev An H3 cell index has its reserved high bit 0 and mode (bits 59..62) 1.
    function _requireValidCell(uint64 h3Cell) private pure {
        if (h3Cell >> 59 != 1) revert RegistryInvalidCell(h3Cell);
    }
}
